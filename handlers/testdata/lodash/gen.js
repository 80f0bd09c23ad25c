// Generates vectors.json: lodash's toPath and pick on the cases of cases.json.
// Run from the repository root: node handlers/testdata/lodash/gen.js
// with lodash installed (XOREST_NODE_MODULES=.peers/node_modules).
"use strict";
const path = require("path");
const fs = require("fs");
const modules = process.env.XOREST_NODE_MODULES || path.join(__dirname, "../../../.peers/node_modules");
const _ = require(path.join(modules, "lodash"));
const cases = JSON.parse(fs.readFileSync(path.join(__dirname, "cases.json"), "utf8"));
const out = {
  lodash: _.VERSION,
  toPath: cases.paths.map((p) => ({ in: p, out: _.toPath(p) })),
  pick: cases.fields.map((f) => ({
    fields: f,
    out: cases.objects.map((o) => JSON.stringify(_.pick(o, f.split(",")))),
  })),
  objects: cases.objects,
};
fs.writeFileSync(path.join(__dirname, "vectors.json"), JSON.stringify(out, null, 2) + "\n");
