"""Seeds the local real OpenStack for .ci/openstack/up, idempotently, over the REST APIs.

    seed.py identity                 service users, catalog, demo project/user, clouds.yaml
    seed.py compute NOVA_CONF HOST.. wait for nova-compute, map hosts, delete leftover servers
    seed.py cloud                    flavors, images, networks, router, quotas, AZs

Runs with /usr/bin/python3 (requests comes with the OpenStack packages). Reads ADMIN_PASS,
SERVICE_PASS, DEMO_PASS, STATE, OS_AUTH_URL and the P_* ports from the environment.
"""

import json
import os
import subprocess
import sys
import time

import requests

E = os.environ
H = "127.0.0.1"
KS = E["OS_AUTH_URL"]  # .../v3
STATE = E["STATE"]
URL = {
    "compute": f"http://{H}:{E['P_NOVA']}/v2.1",
    "placement": f"http://{H}:{E['P_PLACEMENT']}",
    "network": f"http://{H}:{E['P_NEUTRON']}",
    "image": f"http://{H}:{E['P_GLANCE']}",
    "volumev3": f"http://{H}:{E['P_CINDER']}/v3/%(project_id)s",
    "block-storage": f"http://{H}:{E['P_CINDER']}/v3/%(project_id)s",
    "object-store": f"http://{H}:{E['P_SWIFT']}/v1/AUTH_%(project_id)s",
    "s3": f"http://{H}:{E['P_SWIFT']}",
}
SERVICE_NAMES = {
    "compute": "nova",
    "placement": "placement",
    "network": "neutron",
    "image": "glance",
    "volumev3": "cinderv3",
    "block-storage": "cinder",
    "object-store": "swift",
    "s3": "s3",
}
FLAVORS = [  # devcloud's (crates/devcloud/src/seed.rs): id, name, vcpus, ram GiB, disk, ephemeral
    ("1", "m1.tiny", 1, 1, 10, 0),
    ("2", "m1.small", 1, 2, 20, 0),
    ("3", "m1.medium", 2, 4, 40, 0),
    ("4", "m1.large", 4, 8, 40, 40),
    ("5", "m1.xlarge", 8, 16, 80, 80),
    ("10", "spark.large", 4, 16, 40, 100),
    ("11", "spark.xlarge", 8, 32, 40, 200),
]
IMAGES = [
    ("debian-12", {"os_distro": "debian", "os_version": "12", "os_admin_user": "debian"}),
    ("ubuntu-22.04", {"os_distro": "ubuntu", "os_version": "22.04", "os_admin_user": "ubuntu"}),
]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


class Api:
    def __init__(self, user, password, project):
        self.s = requests.Session()
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
        r = self.retry(lambda: self.s.post(f"{KS}/auth/tokens", json=body, timeout=30))
        r.raise_for_status()
        self.token = r.headers["X-Subject-Token"]
        self.project_id = r.json()["token"]["project"]["id"]

    @staticmethod
    def retry(fn, tries=20):
        for i in range(tries):
            try:
                return fn()
            except requests.ConnectionError:
                if i == tries - 1:
                    raise
                time.sleep(1)

    def url(self, svc, path):
        base = KS if svc == "identity" else URL[svc].replace("%(project_id)s", self.project_id)
        if svc == "network":
            base += "/v2.0"
        if svc == "image":
            base += "/v2"
        return base + path

    def call(self, method, svc, path, body=None, ok=(200, 201, 202, 204), **kw):
        headers = {"X-Auth-Token": self.token, "Connection": "close"}
        if svc == "compute":
            headers["OpenStack-API-Version"] = "compute 2.79"
        headers.update(kw.pop("headers", {}))
        r = self.retry(lambda: self.s.request(method, self.url(svc, path), json=body,
                                              headers=headers, timeout=120, **kw))
        if r.status_code not in ok:
            raise SystemExit(f"{method} {svc}{path}: HTTP {r.status_code} {r.text[:500]}")
        return r.json() if r.content and "json" in r.headers.get("content-type", "") else {}

    def find(self, svc, path, key, **match):
        for x in self.call("GET", svc, path)[key]:
            if all(x.get(k) == v for k, v in match.items()):
                return x
        return None


def admin():
    return Api("admin", E["ADMIN_PASS"], "admin")


def ensure(api, svc, path, key, match, body):
    hit = api.find(svc, path, key + "s", **match)
    if hit:
        return hit
    log("create", svc, key, match)
    return api.call("POST", svc, path, {key: body})[key]


def identity():
    a = admin()
    roles = {}
    for r in ("admin", "member", "reader", "service"):
        roles[r] = ensure(a, "identity", "/roles", "role", {"name": r}, {"name": r})["id"]
    projects = {}
    for p in ("service", "demo"):
        projects[p] = ensure(a, "identity", "/projects", "project", {"name": p},
                             {"name": p, "domain_id": "default"})["id"]
    users = [(u, E["SERVICE_PASS"], "service", ("admin", "service"))
             for u in ("nova", "neutron", "glance", "cinder", "placement", "swift")]
    users.append(("demo", E["DEMO_PASS"], "demo", ("member", "reader")))
    for name, pw, project, rs in users:
        u = a.find("identity", "/users", "users", name=name)
        if u is None:
            log("create user", name)
            u = a.call("POST", "identity", "/users", {"user": {
                "name": name, "password": pw, "domain_id": "default",
                "default_project_id": projects[project]}})["user"]
        for r in rs:
            a.call("PUT", "identity",
                   f"/projects/{projects[project]}/users/{u['id']}/roles/{roles[r]}")
    for typ, url in URL.items():
        s = ensure(a, "identity", "/services", "service", {"type": typ},
                   {"type": typ, "name": SERVICE_NAMES[typ], "enabled": True})
        have = {e["interface"] for e in a.call(
            "GET", "identity", f"/endpoints?service_id={s['id']}")["endpoints"]}
        for iface in ("public", "internal", "admin"):
            if iface not in have:
                a.call("POST", "identity", "/endpoints", {"endpoint": {
                    "service_id": s["id"], "interface": iface, "url": url,
                    "region_id": "RegionOne"}})
    def cloud(user, pw, project):
        return (f"    auth:\n      auth_url: {KS}\n      username: {user}\n"
                f"      password: {pw}\n      project_name: {project}\n"
                "      user_domain_name: Default\n      project_domain_name: Default\n"
                "    region_name: RegionOne\n    interface: public\n"
                "    identity_api_version: 3\n")
    path = os.path.join(STATE, "clouds.yaml")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write("clouds:\n  realstack:\n" + cloud("demo", E["DEMO_PASS"], "demo")
                + "  realstack-admin:\n" + cloud("admin", E["ADMIN_PASS"], "admin"))


def compute(nova_conf, hosts):
    a = admin()
    deadline = time.time() + 240
    while True:
        svcs = a.call("GET", "compute", "/os-services?binary=nova-compute")["services"]
        up = {s["host"] for s in svcs if s["state"] == "up"}
        if set(hosts) <= up:
            break
        if time.time() > deadline:
            raise SystemExit(f"nova-compute not up on {sorted(set(hosts) - up)}")
        time.sleep(1)
    # A host is schedulable once mapped to a cell: once per state (the mapping is in the DB).
    marker = os.path.join(STATE, "done", "discovered-" + "-".join(hosts))
    if not os.path.exists(marker):
        mapped = subprocess.run(
            ["nova-manage", "--config-file", nova_conf, "cell_v2", "discover_hosts",
             "--verbose"], capture_output=True, text=True)
        log("discover_hosts:", mapped.returncode, mapped.stdout.strip()[-300:])
        if mapped.returncode != 0:
            raise SystemExit(mapped.stderr)
        open(marker, "w").close()
    # FakeDriver keeps servers in memory: whatever the database still lists from a previous
    # run is gone from the "hypervisor". Delete it.
    left = a.call("GET", "compute", "/servers?all_tenants=1")["servers"]
    for s in left:
        log("delete leftover server", s["id"], s["name"])
        a.call("POST", "compute", f"/servers/{s['id']}/action", {"os-resetState": {"state": "error"}},
               ok=(202, 404, 409))
        a.call("DELETE", "compute", f"/servers/{s['id']}", ok=(204, 404))
    deadline = time.time() + 120
    while left and a.call("GET", "compute", "/servers?all_tenants=1")["servers"]:
        if time.time() > deadline:
            raise SystemExit("leftover servers were not deleted")
        time.sleep(1)


def cloud():
    a = admin()
    demo = a.find("identity", "/projects", "projects", name="demo")["id"]
    for fid, name, vcpus, ram, disk, eph in FLAVORS:
        if a.find("compute", "/flavors", "flavors", name=name) is None:
            log("create flavor", name)
            a.call("POST", "compute", "/flavors", {"flavor": {
                "id": fid, "name": name, "vcpus": vcpus, "ram": ram * 1024, "disk": disk,
                "OS-FLV-EXT-DATA:ephemeral": eph, "os-flavor-access:is_public": True}})
    qcow = os.path.join(STATE, "tiny.qcow2")
    if not os.path.exists(qcow):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", qcow, "1G"], check=True)
    for name, props in IMAGES:
        img = a.find("image", "/images", "images", name=name)
        if img is not None and img["status"] != "active":
            a.call("DELETE", "image", f"/images/{img['id']}")
            img = None
        if img is None:
            log("create image", name)
            img = a.call("POST", "image", "/images", dict(
                name=name, disk_format="qcow2", container_format="bare",
                visibility="public", **props))
            with open(qcow, "rb") as f:
                a.call("PUT", "image", f"/images/{img['id']}/file", data=f.read(),
                       headers={"Content-Type": "application/octet-stream"})
    public = ensure(a, "network", "/networks?name=public", "network", {"name": "public"}, {
        "name": "public", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "public"})
    ensure(a, "network", "/subnets?name=public-subnet", "subnet", {"name": "public-subnet"}, {
        "name": "public-subnet", "network_id": public["id"], "ip_version": 4,
        "cidr": "127.26.0.0/24", "gateway_ip": "127.26.0.1", "enable_dhcp": False,
        "allocation_pools": [{"start": "127.26.0.10", "end": "127.26.0.250"}]})
    private = ensure(a, "network", "/networks?name=private", "network", {"name": "private"}, {
        "name": "private", "project_id": demo})
    sub = ensure(a, "network", "/subnets?name=private-subnet", "subnet",
                 {"name": "private-subnet"}, {
                     "name": "private-subnet", "network_id": private["id"], "ip_version": 4,
                     "cidr": "127.27.0.0/24", "gateway_ip": "127.27.0.1",
                     "enable_dhcp": False, "project_id": demo})
    router = ensure(a, "network", "/routers?name=router", "router", {"name": "router"}, {
        "name": "router", "project_id": demo,
        "external_gateway_info": {"network_id": public["id"]}})
    ports = a.call("GET", "network", f"/ports?device_id={router['id']}")["ports"]
    if not any(ip["subnet_id"] == sub["id"] for p in ports for ip in p["fixed_ips"]):
        log("router interface on private-subnet")
        a.call("PUT", "network", f"/routers/{router['id']}/add_router_interface",
               {"subnet_id": sub["id"]})
    a.call("PUT", "compute", f"/os-quota-sets/{demo}", {"quota_set": {
        "instances": 100, "cores": 400, "ram": 2048000, "key_pairs": 100,
        "server_groups": 50, "server_group_members": 100, "metadata_items": 128}})
    a.call("PUT", "network", f"/quotas/{demo}", {"quota": {
        "floatingip": 100, "port": 500, "network": 50, "subnet": 50, "router": 20,
        "security_group": 100, "security_group_rule": 1000}})
    a.call("PUT", "volumev3", f"/os-quota-sets/{demo}", {"quota_set": {
        "volumes": 200, "gigabytes": 10000, "snapshots": 100}})
    hosts = sys.argv[2:] if len(sys.argv) > 2 else []
    hosts = [s["host"] for s in a.call(
        "GET", "compute", "/os-services?binary=nova-compute")["services"]]
    for i, host in enumerate(sorted(hosts), start=1):
        name = f"az{i}"
        agg = a.find("compute", "/os-aggregates", "aggregates", name=name)
        if agg is None:
            log("aggregate", name, host)
            agg = a.call("POST", "compute", "/os-aggregates", {"aggregate": {
                "name": name, "availability_zone": name}})["aggregate"]
        if host not in agg.get("hosts", []):
            a.call("POST", "compute", f"/os-aggregates/{agg['id']}/action",
                   {"add_host": {"host": host}})


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "identity":
        identity()
    elif cmd == "compute":
        compute(sys.argv[2], sys.argv[3:])
    elif cmd == "cloud":
        cloud()
    else:
        raise SystemExit(f"unknown command {cmd}")
