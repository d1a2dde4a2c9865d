// Offline checks of terraform/: every .tf file is formatted as
// `terraform fmt` formats it (hclwrite.Format, HashiCorp's own code built to
// WebAssembly in @cdktf/hcl-tools), parses with HashiCorp's HCL parser
// (@cdktf/hcl2json), and refers only to what exists: variables, locals,
// resources and data sources of its own module, module calls with the
// arguments their module declares (required ones given), and outputs those
// modules have. That is most of `terraform validate` without providers.
//
//   node terraform/tests/check-hcl.mjs [terraform-dir]
//
// Needs NODE_PATH (or a node_modules) with @cdktf/hcl2json and @cdktf/hcl-tools.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, resolve, relative, dirname } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { parse } = require("@cdktf/hcl2json");
const { format } = require("@cdktf/hcl-tools");

const root = resolve(process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), ".."));
const problems = [];
const problem = (file, message) => problems.push(`${relative(process.cwd(), file)}: ${message}`);

function tfDirs(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".") || name === "node_modules") continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tfDirs(path));
  }
  if (readdirSync(dir).some((f) => f.endsWith(".tf"))) out.push(dir);
  return out;
}

// What one module (folder) declares.
const modules = new Map();
async function load(dir) {
  if (modules.has(dir)) return modules.get(dir);
  const m = {
    dir, files: [], variables: new Map(), outputs: new Set(), locals: new Set(),
    resources: new Set(), data: new Set(), calls: new Map(),
  };
  modules.set(dir, m);
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".tf")).sort()) {
    const file = join(dir, name);
    const text = readFileSync(file, "utf8");
    m.files.push({ file, text });
    const formatted = await format(text);
    if (formatted !== text) problem(file, "not formatted as `terraform fmt` would (run terraform fmt, or compare with @cdktf/hcl-tools format)");
    let json;
    try {
      json = await parse(file, text);
    } catch (e) {
      problem(file, `HCL parse error: ${e.message ?? e}`);
      continue;
    }
    for (const [k, v] of Object.entries(json.variable ?? {})) m.variables.set(k, v[0] ?? {});
    for (const k of Object.keys(json.output ?? {})) m.outputs.add(k);
    for (const block of json.locals ?? []) for (const k of Object.keys(block)) m.locals.add(k);
    for (const [type, byName] of Object.entries(json.resource ?? {})) for (const n of Object.keys(byName)) m.resources.add(`${type}.${n}`);
    for (const [type, byName] of Object.entries(json.data ?? {})) for (const n of Object.keys(byName)) m.data.add(`${type}.${n}`);
    for (const [n, v] of Object.entries(json.module ?? {})) m.calls.set(n, { ...v[0], file });
  }
  return m;
}

const META = new Set(["source", "version", "count", "for_each", "depends_on", "providers", "file"]);
const stripComments = (text) =>
  text.split("\n").map((line) => line.replace(/(^|\s)(#|\/\/).*$/, "$1")).join("\n");
// A moved block's `from` is an address that no longer exists by design;
// its `to` is checked like any reference.
const stripMovedFrom = (code) => code.replace(/(\bmoved\s*\{[^}]*?)\bfrom\s*=[^\n]*/g, "$1");

const dirs = tfDirs(root);
for (const dir of dirs) await load(dir);
for (const dir of dirs) {
  const m = modules.get(dir);
  for (const { file, text } of m.files) {
    const code = stripMovedFrom(stripComments(text));
    for (const [, name] of code.matchAll(/(?<![\w.$])var\.([A-Za-z_][\w-]*)/g))
      if (!m.variables.has(name)) problem(file, `var.${name} is not declared in ${relative(root, dir)}`);
    for (const [, name] of code.matchAll(/(?<![\w.$])local\.([A-Za-z_][\w-]*)/g))
      if (!m.locals.has(name)) problem(file, `local.${name} is not defined in ${relative(root, dir)}`);
    for (const [, isData, ref] of code.matchAll(/(?<![\w.$])(data\.)?(aws_[a-z0-9_]+\.[A-Za-z_][\w-]*)/g)) {
      const set = isData ? m.data : m.resources;
      if (!set.has(ref)) problem(file, `${isData ?? ""}${ref} is not declared in ${relative(root, dir)}`);
    }
    for (const [, call, output] of code.matchAll(/(?<![\w.$])module\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)/g)) {
      const c = m.calls.get(call);
      if (!c) { problem(file, `module.${call} is not called in ${relative(root, dir)}`); continue; }
      const target = modules.get(resolve(dir, c.source));
      if (target && !target.outputs.has(output)) problem(file, `module.${call}.${output}: ${c.source} has no output "${output}"`);
    }
  }
  for (const [name, call] of m.calls) {
    const targetDir = resolve(dir, call.source);
    const target = modules.get(targetDir);
    if (!target) { problem(call.file, `module "${name}": source ${call.source} is not a module folder`); continue; }
    for (const arg of Object.keys(call)) {
      if (!META.has(arg) && !target.variables.has(arg)) problem(call.file, `module "${name}": ${call.source} has no variable "${arg}"`);
    }
    for (const [v, decl] of target.variables) {
      if (!("default" in decl) && !(v in call)) problem(call.file, `module "${name}": required variable "${v}" of ${call.source} is not set`);
    }
  }
}

const files = [...modules.values()].reduce((n, m) => n + m.files.length, 0);
if (problems.length) {
  for (const p of problems) console.error(`error: ${p}`);
  console.error(`${problems.length} problem(s) in ${files} Terraform files`);
  process.exit(1);
}
console.log(`terraform: ${files} files in ${dirs.length} modules formatted, parsed and cross-referenced`);
