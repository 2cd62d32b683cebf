/**
 * The real-network lab for e2e tests and benchmarks: hosts as network namespaces on a bridged LAN,
 * tracked processes with logs, cleanup that leaves nothing behind. Needs root; see preflight.ts.
 */
export { Lab, listNamespaces, namespacePids, nsPrefix, type CleanupReport, type LabOptions } from './lab.js';
export { Host, parsePing, type PingOptions, type PingResult } from './host.js';
export { LabProcess, type ExitStatus, type KillOptions, type LineMatch, type SpawnOptions } from './process.js';
export { ExecError, execIn, execOkIn, pidAlive, type ExecOptions, type ExecResult } from './exec.js';
export { waitFor, sleep, GiveUp, WaitTimeoutError, type WaitOptions } from './wait.js';
export { preflight, requireBinaries, LabPrerequisiteError, type Binary } from './preflight.js';
export { startWgPair, type WgPair, type WgPairEnd, type WgPairOptions } from './wg-pair.js';
export { iperf3, type IperfResult } from './iperf.js';
export { Router, attachHost, rules as natRules, type NatType, type Network, type RouterOptions } from './nat.js';
