// An agent written with viem, the way its documentation says to use a JSON-RPC wallet: the
// gateway's /rpc with the agent key as a bearer token, the account from `requestAddresses`.
// Run by crates/valet-cli/tests/cli.rs (viem_client) against anvil, the sandbox contracts and
// `valet serve`. It approves the router, swaps tUSD for ETH paid to the wallet, then tries a
// tUSD transfer to a stranger, which the swap-only key must refuse with 4001.
//
// Environment: VALET_RPC_URL, VALET_AGENT_KEY, TOKEN, ROUTER, WETH, STRANGER, SWAP_AMOUNT
// (base units of tUSD), and optionally VALET_NODE_MODULES (default: tools/node_modules).
// Prints one JSON line (the summary) on stdout; exits 0 when every step behaved as expected,
// 1 when one did not, 2 when viem is not installed.

import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const nodeModules =
  process.env.VALET_NODE_MODULES ?? fileURLToPath(new URL('../../../../tools/node_modules', import.meta.url))
let viem
try {
  viem = createRequire(join(nodeModules, 'noop.js'))('viem')
} catch (e) {
  console.error(`viem is not installed under ${nodeModules}: run ./tools/install.sh (${e.message})`)
  process.exit(2)
}
const { createPublicClient, createWalletClient, http, erc20Abi, parseAbi, maxUint256, defineChain } = viem

const env = (name) => {
  const v = process.env[name]
  if (!v) {
    console.error(`missing environment variable ${name}`)
    process.exit(1)
  }
  return v
}
const url = env('VALET_RPC_URL')
const token = env('TOKEN')
const router = env('ROUTER')
const weth = env('WETH')
const stranger = env('STRANGER')
const swapAmount = BigInt(env('SWAP_AMOUNT'))

const anvil = defineChain({
  id: 31337,
  name: 'anvil',
  nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
  rpcUrls: { default: { http: [url] } },
})
const transport = http(url, {
  fetchOptions: { headers: { Authorization: `Bearer ${env('VALET_AGENT_KEY')}` } },
  retryCount: 0,
})
const wallet = createWalletClient({ chain: anvil, transport })
const client = createPublicClient({ chain: anvil, transport })
const routerAbi = parseAbi([
  'function swapExactTokensForETH(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline) returns (uint256[] amounts)',
])

const summary = { steps: [] }
const failures = []
const check = (ok, what) => {
  if (!ok) failures.push(what)
}

try {
  const [account] = await wallet.requestAddresses()
  summary.account = account
  summary.chain_id = await client.getChainId()
  check(summary.chain_id === 31337, `chain id ${summary.chain_id}`)

  const balance = () =>
    client.readContract({ address: token, abi: erc20Abi, functionName: 'balanceOf', args: [account] })

  // 1. Approve the trusted router.
  const approveHash = await wallet.writeContract({
    account,
    address: token,
    abi: erc20Abi,
    functionName: 'approve',
    args: [router, maxUint256],
  })
  const approve = await client.waitForTransactionReceipt({ hash: approveHash, timeout: 20_000 })
  summary.steps.push({ step: 'approve', hash: approveHash, status: approve.status })
  check(approve.status === 'success', `approve receipt ${approve.status}`)

  // 2. Swap tUSD for ETH, paid to the wallet.
  const before = await balance()
  const ethBefore = await client.getBalance({ address: account })
  const swapHash = await wallet.writeContract({
    account,
    address: router,
    abi: routerAbi,
    functionName: 'swapExactTokensForETH',
    args: [swapAmount, 1n, [token, weth], account, 4_000_000_000n],
  })
  const swap = await client.waitForTransactionReceipt({ hash: swapHash, timeout: 20_000 })
  const after = await balance()
  const ethAfter = await client.getBalance({ address: account })
  summary.steps.push({
    step: 'swap',
    hash: swapHash,
    status: swap.status,
    token_before: before.toString(),
    token_after: after.toString(),
    eth_gained: ethAfter > ethBefore,
  })
  check(swap.status === 'success', `swap receipt ${swap.status}`)
  check(before - after === swapAmount, `token balance dropped by ${before - after}, not ${swapAmount}`)

  // 3. A tUSD transfer to a stranger: the swap-only key refuses it.
  try {
    const hash = await wallet.writeContract({
      account,
      address: token,
      abi: erc20Abi,
      functionName: 'transfer',
      args: [stranger, 1n],
    })
    summary.steps.push({ step: 'transfer', hash })
    check(false, `the transfer to a stranger was sent: ${hash}`)
  } catch (err) {
    // viem wraps the JSON-RPC error (ContractFunctionExecutionError → TransactionExecutionError
    // → UserRejectedRequestError for 4001 → RpcRequestError carrying `data`).
    const coded = err.walk ? err.walk((e) => e.code === 4001) : null
    const withData = err.walk ? err.walk((e) => e.data?.violations) : null
    summary.steps.push({
      step: 'transfer',
      error: err.name,
      code: coded?.code ?? null,
      code_error: coded?.name ?? null,
      violations: withData?.data?.violations?.map((v) => v.code) ?? null,
      request_id: withData?.data?.request_id ?? null,
    })
    check(coded?.code === 4001, `transfer error code ${coded?.code}: ${err.shortMessage ?? err.message}`)
    check(
      withData?.data?.violations?.[0]?.code === 'function_not_allowed',
      `transfer violations ${JSON.stringify(withData?.data ?? null)}`,
    )
    // What a person sees first (viem's message, causes folded in) names the violation.
    check(
      String(err.message).includes('function_not_allowed'),
      `viem's message names the violation code: ${err.message}`,
    )
  }

  // 4. What remains of the daily cap, as the agent sees it.
  const perms = await client.request({ method: 'valet_getPermissions', params: [] })
  summary.remaining = perms?.limits?.spend?.map((s) => s.remaining) ?? null
} catch (err) {
  failures.push(`unexpected error: ${err.shortMessage ?? err.message}\n${err.stack}`)
}

summary.failures = failures
console.log(JSON.stringify(summary, (_, v) => (typeof v === 'bigint' ? v.toString() : v)))
for (const f of failures) console.error(`viem agent: ${f}`)
process.exit(failures.length === 0 ? 0 : 1)
