// Differential oracle for package filter: runs the real npm complex-matcher.
//
// Input (stdin, JSON): {"filters": [string], "objects": [any], "unicode": bool}
// Output (stdout, JSON): {"version", "results": [{filter, ok, string, ast,
// error, errorType, matches}], "unicode": {raw, lower, canon}}
// Run by differential_test.go with NODE_PATH pointing at a node_modules
// folder holding complex-matcher@1.1.1.
'use strict'

const CM = require('complex-matcher')
const version = require('complex-matcher/package.json').version

function ast(node) {
  if (node instanceof CM.Null) return { type: 'Null' }
  if (node instanceof CM.And) return { type: 'And', children: node.children.map(ast) }
  if (node instanceof CM.Or) return { type: 'Or', children: node.children.map(ast) }
  if (node instanceof CM.Not) return { type: 'Not', child: ast(node.child) }
  if (node instanceof CM.Property) return { type: 'Property', name: node.name, child: ast(node.child) }
  if (node instanceof CM.TruthyProperty) return { type: 'TruthyProperty', name: node.name }
  if (node instanceof CM.StringNode) return { type: 'String', value: node.value }
  if (node instanceof CM.NumberOrStringNode) return { type: 'NumberOrString', value: node.value }
  if (node instanceof CM.GlobPattern) return { type: 'Glob', value: node.value }
  if (node instanceof CM.RegExpNode) return { type: 'RegExp', source: node.re.source, flags: node.re.flags }
  if (node instanceof CM.Comparison) return { type: 'Comparison', op: node._operator, value: String(node._value) }
  throw new Error('unknown node ' + node.constructor.name)
}

function canonicalize(c) {
  const u = c.toUpperCase()
  if (u.length !== 1) return c
  if (c.charCodeAt(0) >= 128 && u.charCodeAt(0) < 128) return c
  return u
}

function main(input) {
  const { filters, objects } = JSON.parse(input)
  const results = filters.map(filter => {
    let node
    try {
      node = CM.parse(filter)
    } catch (error) {
      return { filter, ok: false, error: String(error.message), errorType: error.constructor.name }
    }
    return {
      filter,
      ok: true,
      string: node.toString(),
      ast: ast(node),
      matches: objects.map(o => node.match(o)),
    }
  })
  const out = { version, results }
  if (JSON.parse(input).unicode) {
    let raw = ''
    const lower = []
    const canon = []
    for (let i = 0; i < 0x10000; i++) {
      if (i >= 0xd800 && i < 0xe000) {
        raw += '0'
        continue
      }
      const c = String.fromCharCode(i)
      raw += !(c === c.toUpperCase() && c === c.toLowerCase()) ? '1' : '0'
      const l = c.toLowerCase()
      if (l !== c) lower.push([i, l])
      const k = canonicalize(c)
      if (k !== c) canon.push([i, k.charCodeAt(0)])
    }
    out.unicode = { raw, lower, canon }
  }
  process.stdout.write(JSON.stringify(out))
}

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', chunk => (input += chunk))
process.stdin.on('end', () => main(input))
