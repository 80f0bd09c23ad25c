// Benchmark peer for package filter: times the npm complex-matcher over the
// objects given on stdin. Input: {"filter", "objects", "minMillis"}.
// Output: {"nsPerPass", "cpuNsPerPass", "matches", "passes"}, a pass being
// one match of the filter against every object; cpuNsPerPass is the process
// CPU time (user + system) per pass.
'use strict'

const CM = require('complex-matcher')

function main(input) {
  const { filter, objects, minMillis } = JSON.parse(input)
  const predicate = CM.parse(filter).createPredicate()
  const pass = () => {
    let matches = 0
    for (let i = 0; i < objects.length; i++) {
      if (predicate(objects[i])) matches++
    }
    return matches
  }
  // Warm up the JIT.
  let matches = 0
  for (let i = 0; i < 5; i++) matches = pass()
  let passes = 0
  const startCPU = process.cpuUsage()
  const start = process.hrtime.bigint()
  let elapsed = 0n
  const min = BigInt(minMillis) * 1000000n
  while (elapsed < min) {
    matches = pass()
    passes++
    elapsed = process.hrtime.bigint() - start
  }
  const cpu = process.cpuUsage(startCPU)
  const cpuNs = (cpu.user + cpu.system) * 1000
  process.stdout.write(JSON.stringify({ nsPerPass: Number(elapsed) / passes, cpuNsPerPass: cpuNs / passes, matches, passes }))
}

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', chunk => (input += chunk))
process.stdin.on('end', () => main(input))
