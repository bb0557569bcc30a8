"""Directory: /users, /users/{id|upn}, /groups, /groups/{id},
/organization (GRAPH-API.md §4)."""
from core import (DIR_READ, EMU, HTTPError, Response, graph_error, iso,
                  require_auth, route)
from files import collection, parse_select

USER_DEFAULT = ["businessPhones", "displayName", "givenName", "jobTitle",
                "mail", "mobilePhone", "officeLocation", "preferredLanguage",
                "surname", "userPrincipalName", "id"]
USER_PROPS = set(USER_DEFAULT) | {"accountEnabled", "userType",
                                  "createdDateTime", "mailNickname",
                                  "usageLocation", "proxyAddresses",
                                  "otherMails", "department",
                                  "companyName", "onPremisesSyncEnabled"}
GROUP_PROPS = {"id", "deletedDateTime", "classification", "createdDateTime",
               "description", "displayName", "expirationDateTime",
               "groupTypes", "isAssignableToRole", "mail", "mailEnabled",
               "mailNickname", "membershipRule",
               "membershipRuleProcessingState", "onPremisesLastSyncDateTime",
               "onPremisesSecurityIdentifier", "onPremisesSyncEnabled",
               "preferredDataLocation", "preferredLanguage", "proxyAddresses",
               "renewedDateTime", "resourceBehaviorOptions",
               "resourceProvisioningOptions", "securityEnabled", "theme",
               "visibility", "onPremisesProvisioningErrors"}


def user_json(u, select=None):
    full = {
        "businessPhones": [u.phone] if u.phone else [],
        "displayName": u.display_name,
        "givenName": u.given_name,
        "jobTitle": u.job_title,
        "mail": u.mail,
        "mobilePhone": u.phone,
        "officeLocation": u.office,
        "preferredLanguage": "en-US",
        "surname": u.surname,
        "userPrincipalName": u.upn,
        "id": u.id,
        "accountEnabled": u.account_enabled,
        "userType": u.user_type,
        "createdDateTime": iso(EMU.tenant.created),
        "mailNickname": u.upn.split("@")[0],
        "usageLocation": "US",
        "proxyAddresses": ["SMTP:" + u.mail] if u.mail else [],
        "otherMails": [],
        "department": None,
        "companyName": None,
        "onPremisesSyncEnabled": None,
    }
    keys = USER_DEFAULT if select is None else [k for k in full
                                                if k in select]
    return {k: full[k] for k in keys}


def group_json(g, select=None):
    unified = g.unified
    full = {
        "id": g.id, "deletedDateTime": None, "classification": None,
        "createdDateTime": iso(g.ctime), "description": g.description,
        "displayName": g.display_name, "expirationDateTime": None,
        "groupTypes": ["Unified"] if unified else [],
        "isAssignableToRole": None, "mail": g.mail,
        "mailEnabled": bool(unified), "mailNickname": g.mail_nickname,
        "membershipRule": None, "membershipRuleProcessingState": None,
        "onPremisesLastSyncDateTime": None,
        "onPremisesSecurityIdentifier": None, "onPremisesSyncEnabled": None,
        "preferredDataLocation": "NAM", "preferredLanguage": None,
        "proxyAddresses": ["SMTP:" + g.mail] if g.mail else [],
        "renewedDateTime": iso(g.ctime), "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": ["Team"] if unified else [],
        "securityEnabled": not unified, "theme": None,
        "visibility": "Private" if unified else None,
        "onPremisesProvisioningErrors": [],
    }
    if select is None:
        return full
    return {k: v for k, v in full.items() if k in select}


def _not_found(key):
    return HTTPError(graph_error(
        404, "Request_ResourceNotFound",
        "Resource '%s' does not exist or one of its queried "
        "reference-property objects are not present." % key))


@route("graph", "GET", r"/v1\.0/users")
def users_list(req, m):
    require_auth(req, DIR_READ)
    sel = parse_select(req, USER_PROPS, "user")
    with EMU.lock:
        return collection(req, list(EMU.tenant.users),
                          lambda u: user_json(u, sel), 100, "users")


@route("graph", "GET", r"/v1\.0/users/(?P<key>[^/]+)")
def user_get(req, m):
    require_auth(req, DIR_READ)
    sel = parse_select(req, USER_PROPS, "user")
    with EMU.lock:
        u = EMU.tenant.user(m.group("key"))
        if u is None:
            raise _not_found(m.group("key"))
        out = user_json(u, sel)
        out = dict({"@odata.context": req.url("/v1.0/$metadata#users/"
                                              "$entity")}, **out)
        return Response.json(200, out)


@route("graph", "GET", r"/v1\.0/groups")
def groups_list(req, m):
    require_auth(req, DIR_READ)
    sel = parse_select(req, GROUP_PROPS, "group")
    with EMU.lock:
        return collection(req, list(EMU.tenant.groups),
                          lambda g: group_json(g, sel), 100, "groups")


@route("graph", "GET", r"/v1\.0/groups/(?P<key>[^/]+)")
def group_get(req, m):
    require_auth(req, DIR_READ)
    sel = parse_select(req, GROUP_PROPS, "group")
    with EMU.lock:
        g = EMU.tenant.group(m.group("key"))
        if g is None:
            raise _not_found(m.group("key"))
        return Response.json(200, group_json(g, sel))


@route("graph", "GET", r"/v1\.0/organization")
def organization(req, m):
    require_auth(req, DIR_READ)
    t = EMU.tenant
    org = {
        "id": t.id, "deletedDateTime": None, "businessPhones": [],
        "city": "Redmond", "country": None, "countryLetterCode": "US",
        "createdDateTime": iso(t.created), "displayName": t.display_name,
        "tenantType": "AAD",
        "verifiedDomains": [
            {"capabilities": "Email, OfficeCommunicationsOnline",
             "isDefault": True, "isInitial": True, "name": t.domain,
             "type": "Managed"}],
    }
    return Response.json(200, {"@odata.context": req.url(
        "/v1.0/$metadata#organization"), "value": [org]})


def _me(req, m):
    """/me: delegated tokens act as /users/{oid}; app-only tokens get the
    400 Graph gives them."""
    import core
    claims = require_auth(req, core.ALL_ROLES + ["User.Read", "Files.Read",
                                                 "Files.ReadWrite",
                                                 "Mail.Read",
                                                 "Mail.ReadWrite"])
    if not claims.get("scp") or not claims.get("oid"):
        raise HTTPError(graph_error(400, "BadRequest",
                                    "/me request is only valid with "
                                    "delegated authentication flow."))
    sub = core.Request(req.method, req.host,
                       "/v1.0/users/%s%s" % (claims["oid"],
                                             req.raw_path[len("/v1.0/me"):]),
                       req.query_string, req.headers, req.body)
    resp, _, _ = core.dispatch(sub, apply_faults=False)
    return resp


for _method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
    route("graph", _method, r"/v1\.0/me(?P<rest>/.*)?")(_me)
