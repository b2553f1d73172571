// validate.js - offline schema validation of Kubernetes objects with the kubernetes-models npm
// package (JSON schemas of the Kubernetes OpenAPI: types, enums, required fields, formats; it
// does not reject unknown fields). Reads a JSON array of objects from the file argv[3], loads
// the models from node_modules under argv[2], prints "ok"/"FAIL" per object and exits 1 on any
// failure. Objects whose name starts with "negative-control" must FAIL (proves it validates).
"use strict";
const fs = require("fs");
const path = require("path");
const [modDir, file] = process.argv.slice(2);
const objs = JSON.parse(fs.readFileSync(file, "utf8"));
let failed = 0;
for (const o of objs) {
  const name = `${o.kind}/${(o.metadata || {}).name}`;
  const negative = ((o.metadata || {}).name || "").startsWith("negative-control");
  const av = o.apiVersion || "";
  const group = av.includes("/") ? av : `v1`;
  let Model;
  try {
    Model = require(path.join(path.resolve(modDir), "node_modules", "kubernetes-models", group))[o.kind];
  } catch (e) {
    Model = undefined;
  }
  if (!Model) {
    console.log(`FAIL ${name}: no model for ${av} ${o.kind}`);
    failed++;
    continue;
  }
  let err = null;
  try {
    new Model(o).validate();
  } catch (e) {
    err = e;
  }
  if (negative) {
    if (err) console.log(`ok ${name} is rejected (${String(err.message).split("\n")[0]})`);
    else { console.log(`FAIL ${name}: an invalid object passed validation`); failed++; }
  } else if (err) {
    console.log(`FAIL ${name} (${av}): ${String(err.message).slice(0, 400)}`);
    failed++;
  } else {
    console.log(`ok ${name} (${av}) validates`);
  }
}
process.exit(failed ? 1 : 0);
