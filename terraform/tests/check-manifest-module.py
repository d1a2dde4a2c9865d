"""Checks `terraform output -json` of terraform/tests/manifest (the
manifest module evaluated offline) for one rendered manifest.

    python3 check-manifest-module.py OUTPUTS.json RENDERED.json
"""

import json
import re
import sys

outputs = {k: v["value"] for k, v in json.load(open(sys.argv[1])).items()}
rendered = json.load(open(sys.argv[2]))
PREFIX = "woocom-dev-test"
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


check(outputs["format_ok"] is True, "format_ok")

# Tables: prefixed names, every key attribute once with its type.
for name, t in rendered["tables"].items():
    out = outputs["tables"][name]
    check(out["name"] == f"{PREFIX}-{name}", f"table {name}: name {out['name']}")
    keys = [t["partition_key"]] + ([t["sort_key"]] if t["sort_key"] else [])
    for i in t["global_indexes"]:
        keys += [i["partition_key"]] + ([i["sort_key"]] if i["sort_key"] else [])
    keys += [i["sort_key"] for i in t["local_indexes"]]
    want = sorted({(k["name"], k["type"]) for k in keys})
    got = sorted((a["name"], a["type"]) for a in out["attributes"])
    check(want == got, f"table {name}: attributes {got} != {want}")
    check(out["stream_view_type"] == t["stream"], f"table {name}: stream")
    for i in out["global_indexes"] + out["local_indexes"]:
        if i["projection_type"] != "INCLUDE":
            check(i["non_key_attributes"] is None, f"table {name}: index {i['name']} non_key_attributes")

# Functions: env rewritten, policies filled in, nothing left unfilled.
endpoint = outputs["websocket_endpoint"]
for name, f in outputs["functions"].items():
    d = rendered["deploy"]["functions"][name]
    check(f["name"] == f"{PREFIX}-{name}", f"function {name}: name")
    for k, table in d["table_env"].items():
        check(f["env"].get(k) == f"{PREFIX}-{table}", f"function {name}: env {k}={f['env'].get(k)}")
    for k, bus in d.get("bus_env", {}).items():
        want = "default" if bus == "default" else f"{PREFIX}-{bus}"
        check(f["env"].get(k) == want, f"function {name}: env {k}={f['env'].get(k)}, want {want}")
    for k, v in d["env"].items():
        check(f["env"].get(k) == v, f"function {name}: env {k}")
    if d["websocket_endpoint"]:
        check(f["env"].get("WOOCOM_WEBSOCKET_ENDPOINT") == endpoint and endpoint.startswith("https://"),
              f"function {name}: WOOCOM_WEBSOCKET_ENDPOINT")
    else:
        check("WOOCOM_WEBSOCKET_ENDPOINT" not in f["env"], f"function {name}: unexpected endpoint")
    check("${" not in f["policy"], f"function {name}: unfilled placeholder in {f['policy']}")
    policy = json.loads(f["policy"])
    for s in policy["Statement"]:
        for r in s["Resource"]:
            check(re.match(r"^arn:aws:(logs|dynamodb|sqs|sns|lambda|execute-api|events):eu-west-1:123456789012:", r), f"{name}: {r}")
            if ":events:" in r:
                check(r.endswith(":event-bus/default") or f":event-bus/{PREFIX}-" in r, f"{name}: {r} is not the stack's")
            if ":dynamodb:" in r:
                check(f":table/{PREFIX}-" in r, f"{name}: {r}")
            if re.match(r"^arn:aws:(sqs|sns):", r):
                check(r.split(":")[5].startswith(f"{PREFIX}-"), f"{name}: {r} is not the stack's")
            if ":lambda:" in r:
                check(f":function:{PREFIX}-" in r, f"{name}: {r} is not the stack's")
            if ":execute-api:" in r:
                check(r == "arn:aws:execute-api:eu-west-1:123456789012:abc123defg/api/*/@connections/*", f"{name}: {r}")

# REST API: every route once in the OpenAPI document, path parameters
# declared, CORS preflights where dev.toml enables CORS.
paths = outputs["openapi"]["paths"]
for r in rendered["routes"]:
    method = "x-amazon-apigateway-any-method" if r["method"] == "ANY" else r["method"].lower()
    op = paths.get(r["path"], {}).get(method)
    check(op is not None, f"route {r['method']} {r['path']} missing")
    if op is None:
        continue
    integration = op["x-amazon-apigateway-integration"]
    check(integration["type"] == "aws_proxy" and integration["httpMethod"] == "POST", f"{r['path']}: integration")
    check(integration["uri"].endswith(f":function:{PREFIX}-{r['function']}/invocations"), f"{r['path']}: uri")
    check(integration["timeoutInMillis"] == rendered["api"]["integration_timeout_ms"], f"{r['path']}: timeout")
    params = sorted(p["name"] for p in op["parameters"])
    want = sorted(re.findall(r"\{([^}+]+)\+?\}", r["path"]))
    check(params == want, f"{r['path']}: parameters {params} != {want}")
    if rendered["api"].get("cors"):
        check("options" in paths[r["path"]], f"{r['path']}: no CORS preflight")
operations = sum(len([k for k in v if k != "options"]) for v in paths.values())
check(operations == len(rendered["routes"]), f"{operations} operations for {len(rendered['routes'])} routes")
check(outputs["openapi"]["x-amazon-apigateway-binary-media-types"] == rendered["api"]["binary_media_types"], "binary media types")
if rendered["api"].get("cors"):
    check(set(outputs["openapi"]["x-amazon-apigateway-gateway-responses"]) == {"DEFAULT_4XX", "DEFAULT_5XX"}, "gateway responses")

perms = outputs["rest_permissions"]
check(len(perms) == len(rendered["routes"]), "one permission per route")
for p in perms.values():
    check(re.match(r"^api/(\*|[A-Z]+)/[^{}]*$", p["source_path"]) is not None, f"permission path {p['source_path']}")

# Subscriptions: same settings, filters as JSON pattern strings.
subs = outputs["subscriptions"]
for i, s in enumerate(rendered.get("subscriptions", [])):
    derived = rendered["deploy"]["subscriptions"][i]
    key = derived["key"]
    out = subs[key]
    stream = derived["source"]["kind"] == "table"
    check((out["source_kind"], out["source"]) == (derived["source"]["kind"], derived["source"]["name"]), f"{key}: source")
    failure = derived["on_failure"]
    dedicated = f"{PREFIX}-{failure['name']}" if failure and failure["dedicated"] else None
    check(out["dedicated_queue"] == dedicated, f"{key}: dedicated queue {out['dedicated_queue']} != {dedicated}")
    check(out["on_failure"] == failure, f"{key}: on_failure")
    check(stream or failure is None, f"{key}: an SQS mapping has no on-failure destination")
    for field in ["batch_size", "maximum_batching_window_in_seconds"]:
        check(out[field] == s.get(field), f"{key}: {field} {out[field]} != {s.get(field)}")
    # SQS mappings take no stream settings (Lambda refuses them).
    for field in ["maximum_retry_attempts", "maximum_record_age_in_seconds"]:
        want = s.get(field) if stream else None
        check(out[field] == want, f"{key}: {field} {out[field]} != {want}")
    check(out["starting_position"] == ((s.get("starting_position") or "LATEST") if stream else None), f"{key}: starting_position")
    check(out["maximum_concurrency"] == s.get("maximum_concurrency"), f"{key}: maximum_concurrency")
    check(out["report_batch_item_failures"] == bool(s.get("report_batch_item_failures")), f"{key}: report")
    for f in out["filters"]:
        check(isinstance(json.loads(f), dict), f"{key}: filter {f}")
check(len(subs) == len(rendered.get("subscriptions", [])), "subscriptions count")

# Queues and topics: every queue and topic under the prefix with its
# settings; one subscription per topic and endpoint; each queue's
# publishers are exactly the topics that deliver to it.
queues, topics = outputs["queues"], outputs["topics"]
check(set(queues) == set(rendered.get("queues") or {}), "queues")
for name, q in (rendered.get("queues") or {}).items():
    out = queues[name]
    check(out["name"] == f"{PREFIX}-{name}", f"queue {name}: name")
    for field in ["fifo_queue", "content_based_deduplication", "visibility_timeout_seconds", "message_retention_seconds",
                  "delay_seconds", "max_message_size", "receive_wait_time_seconds", "redrive_policy",
                  "redrive_allow_policy", "source_queues"]:
        check(out[field] == q.get(field), f"queue {name}: {field} {out[field]} != {q.get(field)}")
    senders = sorted({t for t, topic in (rendered.get("topics") or {}).items() for s in topic["subscriptions"]
                      if (s["protocol"] == "sqs" and s["endpoint"] == name) or s.get("dead_letter_queue") == name})
    check(out["topic_publishers"] == senders, f"queue {name}: publishers {out['topic_publishers']} != {senders}")
    rules = sorted({r for r, rule in (rendered.get("rules") or {}).items() for t in rule["targets"]
                    if (t["kind"] == "queue" and t["name"] == name) or t.get("dead_letter_queue") == name})
    check(out["event_rules"] == rules, f"queue {name}: event rules {out['event_rules']} != {rules}")
check(set(topics) == set(rendered.get("topics") or {}), "topics")
declared_subs = [(t, s) for t, topic in (rendered.get("topics") or {}).items() for s in topic["subscriptions"]]
check(len(outputs["topic_subscriptions"]) == len(declared_subs), "one subscription per declared one")
for t, s in declared_subs:
    out = outputs["topic_subscriptions"].get(f"{t}/{s['protocol']}/{s['endpoint']}")
    check(out is not None, f"topic {t}: subscription {s['protocol']} {s['endpoint']}")
    if out:
        check(out["raw_message_delivery"] == s["raw_message_delivery"], f"topic {t}: raw delivery")
        check(out["dead_letter_queue"] == s.get("dead_letter_queue"), f"topic {t}: dead-letter queue")
        check(out["filter_policy_scope"] == (s["filter_policy_scope"] if s.get("filter_policy") else None), f"topic {t}: scope")
        if s.get("filter_policy"):
            check(isinstance(json.loads(out["filter_policy"]), dict), f"topic {t}: filter policy is JSON")

# Buses and rules: custom buses under the prefix (never `default`),
# rules under the prefix on their bus, one target per rule and id, no
# retry policy on bus targets; topics know the rules publishing to them.
buses, rules, targets = outputs["buses"], outputs["rules"], outputs["event_targets"]
check(set(buses) == set(rendered.get("buses") or {}) and "default" not in buses, f"buses {sorted(buses)}")
for name, b in buses.items():
    check(b["name"] == f"{PREFIX}-{name}", f"bus {name}: name {b['name']}")
check(outputs["bus_names"].get("default") == "default", "the default bus keeps its name")
check(set(rules) == set(rendered.get("rules") or {}), f"rules {sorted(rules)}")
declared_targets = {}
for name, r in (rendered.get("rules") or {}).items():
    out = rules[name]
    check(out["name"] == f"{PREFIX}-{name}", f"rule {name}: name {out['name']}")
    check(out["bus_name"] == ("default" if r["bus"] == "default" else f"{PREFIX}-{r['bus']}"), f"rule {name}: bus {out['bus_name']}")
    for field in ["event_pattern", "schedule_expression", "state", "description"]:
        check(out[field] == r.get(field), f"rule {name}: {field} {out[field]} != {r.get(field)}")
    for t in r["targets"]:
        declared_targets[f"{name}/{t['id']}"] = t
check(set(targets) == set(declared_targets), f"event targets {sorted(targets)} != {sorted(declared_targets)}")
for key, t in declared_targets.items():
    out = targets.get(key) or {}
    for field in ["kind", "name", "input", "input_path", "input_transformer", "message_group_id", "dead_letter_queue"]:
        check(out.get(field) == t.get(field), f"target {key}: {field} {out.get(field)} != {t.get(field)}")
    want_retry = None if t["kind"] == "bus" else t["retry_policy"]
    check(out.get("retry_policy") == want_retry, f"target {key}: retry_policy {out.get('retry_policy')}")
for name, topic in outputs["topics"].items():
    want = sorted({r for r, rule in (rendered.get("rules") or {}).items() for t in rule["targets"]
                   if t["kind"] == "topic" and t["name"] == name})
    check(topic["event_rules"] == want, f"topic {name}: event rules {topic['event_rules']} != {want}")

if "websocket" in rendered:
    check((outputs.get("websocket") or {}).get("routes") == rendered["websocket"]["routes"], "websocket routes")
else:
    check(outputs.get("websocket") is None and endpoint == "", "no websocket")

if problems:
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    sys.exit(1)
print(f"manifest module: {sys.argv[2]}: {len(outputs['functions'])} functions, {len(rendered['routes'])} routes, "
      f"{len(outputs['tables'])} tables, {len(subs)} subscriptions, {len(queues)} queues, {len(topics)} topics, "
      f"{len(buses)} buses, {len(rules)} rules, {len(targets)} event targets checked")
