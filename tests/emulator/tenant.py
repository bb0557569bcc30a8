"""Tenant model and deterministic generator (placeholder: filled in step 2)."""
import random
import uuid


class Tenant:
    def __init__(self, seed):
        rng = random.Random("tenant:%d" % seed)
        self.id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.domain = "contoso.onmicrosoft.com"
        self.display_name = "Contoso"
        self.admin_upn = "admin@" + self.domain
        self.users = []


def generate(scale=0, seed=1, kind=None, state_dir=None):
    return Tenant(seed)


def save_cache(tenant):
    pass
