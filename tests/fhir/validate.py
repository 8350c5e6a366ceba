#!/usr/bin/env python3
"""Validates FHIR R4 JSON resources written by samsyn-fhir.

Usage:
    python3 tests/fhir/validate.py DIR      every *.json under DIR (recursively)
    python3 tests/fhir/validate.py --self-test

Each file is parsed with the fhir.resources R4B models (R4B keeps R4's shape for every
resource Samsyn writes), which check structure, cardinality, data types and unknown elements;
nested resources (Bundle entries, contained) are checked as part of their parent. The models
do not check codes, so this script also checks the required-binding codes Samsyn uses, that
no element is empty, that local references (#id) resolve, and a few Bundle rules.

Prints one line per file and exits 1 if any file fails, 2 if fhir.resources is missing.
"""

import json
import pathlib
import sys

try:
    from fhir.resources.R4B import get_fhir_model_class
except ImportError:
    print(
        "fhir.resources is not installed: pip install -r tests/fhir/requirements.txt",
        file=sys.stderr,
    )
    sys.exit(2)

# Required bindings (FHIR R4 value sets), by resource type and element path.
EPISODE_STATUS = {"planned", "waitlist", "active", "onhold", "finished", "cancelled", "entered-in-error"}
REQUIRED_CODES = {
    "Patient.gender": {"male", "female", "other", "unknown"},
    "EpisodeOfCare.status": EPISODE_STATUS,
    "EpisodeOfCare.statusHistory.status": EPISODE_STATUS,
    "CareTeam.status": {"proposed", "active", "suspended", "inactive", "entered-in-error"},
    "CarePlan.status": {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"},
    "CarePlan.intent": {"proposal", "plan", "order", "option"},
    "CarePlan.activity.detail.status": {
        "not-started", "scheduled", "in-progress", "on-hold", "completed", "cancelled",
        "stopped", "unknown", "entered-in-error",
    },
    "CarePlan.activity.detail.kind": {
        "Appointment", "CommunicationRequest", "DeviceRequest", "MedicationRequest",
        "NutritionOrder", "Task", "ServiceRequest", "VisionPrescription",
    },
    "Goal.lifecycleStatus": {
        "proposed", "planned", "accepted", "active", "on-hold", "completed", "cancelled",
        "entered-in-error", "rejected",
    },
    "Consent.status": {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"},
    "Consent.provision.type": {"deny", "permit"},
    "Consent.provision.provision.type": {"deny", "permit"},
    "AuditEvent.action": {"C", "R", "U", "D", "E"},
    "AuditEvent.outcome": {"0", "4", "8", "12"},
    "Bundle.type": {
        "document", "message", "transaction", "transaction-response", "batch",
        "batch-response", "history", "searchset", "collection",
    },
    "Bundle.entry.request.method": {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"},
    "Bundle.entry.search.mode": {"match", "include", "outcome"},
    "OperationOutcome.issue.severity": {"fatal", "error", "warning", "information"},
    "OperationOutcome.issue.code": {
        "invalid", "structure", "required", "value", "invariant", "security", "login",
        "unknown", "expired", "forbidden", "suppressed", "processing", "not-supported",
        "duplicate", "multiple-matches", "not-found", "deleted", "too-long", "code-invalid",
        "extension", "too-costly", "business-rule", "conflict", "transient", "lock-error",
        "no-store", "exception", "timeout", "incomplete", "throttled", "informational",
    },
    "CapabilityStatement.status": {"draft", "active", "retired", "unknown"},
    "CapabilityStatement.kind": {"instance", "capability", "requirements"},
    "CapabilityStatement.fhirVersion": {"4.0.0", "4.0.1"},
    "CapabilityStatement.rest.mode": {"client", "server"},
    "CapabilityStatement.rest.resource.interaction.code": {
        "read", "vread", "update", "patch", "delete", "history-instance", "history-type",
        "create", "search-type",
    },
    "CapabilityStatement.rest.resource.searchParam.type": {
        "number", "date", "string", "token", "reference", "composite", "quantity", "uri", "special",
    },
}


def check_codes(node, resource_type, path, problems):
    """Checks required-binding codes, restarting the path at every nested resource."""
    if isinstance(node, list):
        for item in node:
            check_codes(item, resource_type, path, problems)
        return
    if not isinstance(node, dict):
        return
    if isinstance(node.get("resourceType"), str):
        resource_type, path = node["resourceType"], ""
    for key, value in node.items():
        element = f"{path}.{key}" if path else key
        allowed = REQUIRED_CODES.get(f"{resource_type}.{element}")
        if allowed is not None:
            for code in value if isinstance(value, list) else [value]:
                if code not in allowed:
                    problems.append(f"{resource_type}.{element}: {code!r} is not a valid code")
        if resource_type == "CapabilityStatement" and element == "rest.resource.type":
            try:
                get_fhir_model_class(value)
            except KeyError:
                problems.append(f"CapabilityStatement.rest.resource.type: unknown type {value!r}")
        check_codes(value, resource_type, element, problems)


def check_not_empty(node, where, problems):
    """FHIR JSON has no nulls and no empty strings, arrays or objects."""
    if node is None or node == "" or node == [] or node == {}:
        problems.append(f"{where or 'resource'}: empty value {node!r}")
    elif isinstance(node, dict):
        for key, value in node.items():
            check_not_empty(value, f"{where}.{key}" if where else key, problems)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_not_empty(value, f"{where}[{i}]", problems)


def local_references(node, top=True):
    """Every reference (#id) into `contained` made by this resource, not by nested ones."""
    if isinstance(node, dict):
        if not top and "resourceType" in node:
            return
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value.startswith("#"):
                yield value[1:]
            elif key != "contained":
                yield from local_references(value, False)
    elif isinstance(node, list):
        for value in node:
            yield from local_references(value, False)


def check_resources(node, problems):
    """Per-resource rules the models do not check, for this resource and nested ones."""
    if isinstance(node, list):
        for item in node:
            check_resources(item, problems)
        return
    if not isinstance(node, dict):
        return
    if isinstance(node.get("resourceType"), str):
        kind = node["resourceType"]
        contained = {r.get("id") for r in node.get("contained", []) if isinstance(r, dict)}
        referenced = set(local_references(node))
        for resource in node.get("contained", []):
            referenced |= set(local_references(resource))
        for ref in sorted(referenced - contained):
            problems.append(f"{kind}: reference #{ref} has no contained resource")
        for unused in sorted(i for i in contained - referenced if i):
            problems.append(f"{kind}: contained {unused} is never referenced (dom-3)")
        if kind == "Bundle":
            check_bundle(node, problems)
    for value in node.values():
        check_resources(value, problems)


def check_bundle(bundle, problems):
    kind = bundle.get("type")
    entries = bundle.get("entry", [])
    if "total" in bundle and kind not in ("searchset", "history"):
        problems.append("Bundle: total only in a searchset or history (bdl-1)")
    full_urls = [e["fullUrl"] for e in entries if "fullUrl" in e]
    if len(full_urls) != len(set(full_urls)):
        problems.append("Bundle: fullUrl is not unique (bdl-7)")
    for i, entry in enumerate(entries):
        if kind in ("transaction", "batch") and "request" not in entry:
            problems.append(f"Bundle.entry[{i}]: a {kind} entry needs a request (bdl-3)")
        if "search" in entry and kind != "searchset":
            problems.append(f"Bundle.entry[{i}]: search only in a searchset (bdl-2)")
        resource = entry.get("resource", {})
        url = entry.get("fullUrl", "")
        if url and "id" in resource and not url.endswith(f"/{resource.get('resourceType')}/{resource['id']}"):
            problems.append(f"Bundle.entry[{i}]: fullUrl {url} does not match the resource id")


def validate(data):
    """All problems with one resource; empty when it is valid."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        return ["not a FHIR resource: no resourceType"]
    try:
        model = get_fhir_model_class(data["resourceType"])
    except KeyError:
        return [f"unknown resourceType {data['resourceType']!r}"]
    problems = []
    try:
        model.model_validate(data)
    except Exception as error:  # pydantic.ValidationError and fhir.resources' own errors
        problems.append(str(error))
    check_not_empty(data, "", problems)
    check_codes(data, data["resourceType"], "", problems)
    check_resources(data, problems)
    return problems


def validate_dir(directory):
    files = sorted(pathlib.Path(directory).rglob("*.json"))
    if not files:
        print(f"FAIL {directory}: no *.json files")
        return 1
    failed = 0
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            problems = [f"cannot read: {error}"]
        else:
            problems = validate(data)
        if problems:
            failed += 1
            print(f"FAIL {path}: " + "; ".join(p.replace("\n", " | ") for p in problems))
        else:
            print(f"ok   {path} ({data['resourceType']}/{data.get('id', '-')})")
    print(f"{len(files) - failed} of {len(files)} valid")
    return 1 if failed else 0


PATIENT_REF = {"reference": "Patient/p1"}
SELF_TEST_VALID = {"resourceType": "EpisodeOfCare", "id": "e1", "status": "active", "patient": PATIENT_REF}
SELF_TEST_INVALID = {
    "status code outside the value set": {**SELF_TEST_VALID, "status": "enrolled"},
    "unknown element": {**SELF_TEST_VALID, "enrolment": "2025-01-01"},
    "missing required element": {"resourceType": "CarePlan", "id": "c1", "status": "active", "subject": PATIENT_REF},
    "empty array": {**SELF_TEST_VALID, "statusHistory": []},
    "malformed date": {**SELF_TEST_VALID, "period": {"start": "2025-13-01"}},
    "dangling contained reference": {
        "resourceType": "CarePlan", "id": "c1", "status": "active", "intent": "plan",
        "subject": PATIENT_REF, "goal": [{"reference": "#goal-1"}],
    },
    "invalid code inside a bundle entry": {
        "resourceType": "Bundle", "type": "transaction",
        "entry": [{"resource": {**SELF_TEST_VALID, "status": "enrolled"},
                   "request": {"method": "PUT", "url": "EpisodeOfCare/e1"}}],
    },
    "dangling contained reference inside a bundle entry": {
        "resourceType": "Bundle", "type": "searchset",
        "entry": [{"fullUrl": "https://x.example/fhir/CarePlan/c1", "resource": {
            "resourceType": "CarePlan", "id": "c1", "status": "active", "intent": "plan",
            "subject": PATIENT_REF, "addresses": [{"reference": "#need-1"}]}}],
    },
    "contained resource never referenced": {
        "resourceType": "CarePlan", "id": "c1", "status": "active", "intent": "plan",
        "subject": PATIENT_REF,
        "contained": [{"resourceType": "Goal", "id": "goal-1", "lifecycleStatus": "active",
                       "description": {"text": "x"}, "subject": PATIENT_REF}],
    },
    "transaction entry without request": {
        "resourceType": "Bundle", "type": "transaction", "entry": [{"resource": SELF_TEST_VALID}],
    },
}


def self_test():
    """Proves the checks can fail: every invalid sample is rejected, the valid one accepted."""
    failed = 0
    problems = validate(SELF_TEST_VALID)
    if problems:
        failed += 1
        print(f"FAIL the valid sample was rejected: {problems}")
    for label, data in SELF_TEST_INVALID.items():
        problems = validate(data)
        if problems:
            print(f"ok   rejected {label}: {problems[0].splitlines()[0]}")
        else:
            failed += 1
            print(f"FAIL accepted {label}")
    return 1 if failed else 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    if len(argv) == 1 and not argv[0].startswith("-"):
        return validate_dir(argv[0])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
