// The dashboard in a real headless Chromium, driven with playwright-core. Run by
// crates/valet-cli/tests/cli/dashboard.rs against the real `valet serve`, which has issued two
// keys: KEY_ID (the one the story is about) and LOAD_KEY (for the burst at the end).
//
// The story: a wrong admin token shows no key data; the right one shows the key; the live
// feed shows the agent's requests (allowed and denied) as they happen; the key's detail has
// its policy, spend chart and recent activity; the audit log verifies; the owner revokes the
// key through the in-page confirmation and the agent's next request gets 4100 "revoked"; the
// kill switch revokes the rest. Measured, not asserted: the bytes of the first load, and how
// the feed copes with a burst of LOAD_REQUESTS requests.
//
// Environment: DASHBOARD_URL, ADMIN_TOKEN, KEY_ID, KEY_NAME, AGENT_KEY, LOAD_KEY, WALLET,
// SCREENSHOT (a .png path), optionally LOAD_REQUESTS (1000), CHROMIUM (/usr/bin/chromium),
// VALET_NODE_MODULES (default: tools/node_modules).
// Prints one JSON line (the summary) on stdout; exits 0 when every step behaved, 1 when one
// did not, 2 when playwright-core or Chromium is missing.

import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const nodeModules =
  process.env.VALET_NODE_MODULES ?? fileURLToPath(new URL('../../../../tools/node_modules', import.meta.url))
let chromium
try {
  ;({ chromium } = createRequire(join(nodeModules, 'noop.js'))('playwright-core'))
} catch (e) {
  console.error(`playwright-core is not installed under ${nodeModules}: run ./tools/install.sh (${e.message})`)
  process.exit(2)
}
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium'
if (!existsSync(executablePath)) {
  console.error(`Chromium is missing (${executablePath}): apt-get install -y chromium chromium-driver (./tools/install.sh does it as root)`)
  process.exit(2)
}

const env = (name) => {
  const v = process.env[name]
  if (!v) {
    console.error(`missing environment variable ${name}`)
    process.exit(1)
  }
  return v
}
const URL_ = env('DASHBOARD_URL')
const ADMIN = env('ADMIN_TOKEN')
const KEY_ID = env('KEY_ID')
const KEY_NAME = env('KEY_NAME')
const AGENT = env('AGENT_KEY')
const LOAD_KEY = env('LOAD_KEY')
const WALLET = env('WALLET')
const SCREENSHOT = env('SCREENSHOT')
const LOAD_REQUESTS = Number(process.env.LOAD_REQUESTS ?? 1000)

const summary = { steps: [] }
const step = (name) => { summary.steps.push(name); console.error(`step: ${name}`) }
function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`)
}

let id = 0
async function rpc(key, method, params = []) {
  const r = await fetch(`${URL_}/rpc`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }),
  })
  return r.json()
}

const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
})
let failed = null
const problems = []
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1100 }, deviceScaleFactor: 1 })
  const page = await context.newPage()
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[14]/.test(m.text())) problems.push(`console: ${m.text()}`)
  })
  page.setDefaultTimeout(15000)

  // The bytes of the first load, as the network saw them (headers and bodies, on the wire).
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true })
  let bytes = 0
  let requests = 0
  const counting = (e) => { bytes += e.encodedDataLength; requests++ }
  cdp.on('Network.loadingFinished', counting)
  await page.goto(URL_, { waitUntil: 'networkidle' })
  cdp.off('Network.loadingFinished', counting)
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: false })
  summary.first_load_bytes = bytes
  summary.first_load_requests = requests
  step(`first load: ${bytes} bytes in ${requests} requests`)

  // 1. A wrong token: a clear message and no key data anywhere in the DOM.
  await page.fill('#token', 'not-the-admin-token')
  await page.click('button[type=submit]')
  await page.waitForFunction(() => /invalid token/.test(document.getElementById('login-error').textContent))
  const html = await page.content()
  check(!html.includes(KEY_ID) && !html.includes(KEY_NAME) && !html.includes(WALLET.toLowerCase().slice(2, 12)), 'no key data after a wrong token')
  check(await page.isHidden('#app'), 'the app stays hidden')
  check((await page.evaluate(() => sessionStorage.length)) === 0, 'a wrong token is not kept')
  summary.wrong_token_message = await page.textContent('#login-error')
  step('wrong token refused, nothing shown')

  // 2. The right token: the key is listed.
  await page.fill('#token', ADMIN)
  await page.click('button[type=submit]')
  const row = page.locator(`#keys tr[data-key-id="${KEY_ID}"]`)
  await row.waitFor()
  check((await row.getAttribute('data-status')) === 'active', 'the key is active')
  check((await row.textContent()).includes('full-access'), 'the row shows the profile')
  check((await context.cookies()).length === 0, 'no cookie is set')
  await page.waitForFunction(() => document.getElementById('feed-state').dataset.state === 'live')
  check((await page.textContent('#anomalies')).includes('no anomalies'), 'anomalies panel (404 or empty: none)')
  step('logged in, key listed, feed live')

  // Filter and sort.
  await page.fill('#filter', 'read-only')
  await page.waitForFunction(() => document.querySelectorAll('#keys tbody tr').length === 1)
  check(!(await row.isVisible().catch(() => false)), 'the filter hides the other key')
  await page.fill('#filter', '')
  await page.click('#keys th[data-sort="name"]')
  const names = await page.$$eval('#keys tbody tr a.key', (as) => as.map((a) => a.textContent))
  check(names.join() === [...names].sort().join() && names.length === 2, `sorted by name: ${names}`)
  step('filter and sort')

  // 3. The live feed shows the agent's requests, allowed and denied, as they happen.
  const chain = await rpc(AGENT, 'eth_chainId')
  check(typeof chain.result === 'string', `eth_chainId answered: ${JSON.stringify(chain)}`)
  // Three transactions (0.01, 0.02 and 0.005 ETH), a moment apart, for the spend chart.
  for (const value of ['0x2386f26fc10000', '0x470de4df820000', '0x11c37937e08000']) {
    await new Promise((r) => setTimeout(r, 700))
    const sign = await rpc(AGENT, 'eth_signTransaction', [{
      to: '0x00000000000000000000000000000000000000bb', value, gas: '0x5208',
      maxFeePerGas: '0x3b9aca00', maxPriorityFeePerGas: '0x1',
    }])
    check(typeof sign.result === 'string', `eth_signTransaction allowed: ${JSON.stringify(sign)}`)
  }
  const denied = await rpc(AGENT, 'eth_sign', [WALLET, '0x00'])
  check(denied.error?.code === 4001, `eth_sign denied: ${JSON.stringify(denied)}`)
  await page.waitForFunction((id) => document.querySelectorAll(`#feed li[data-key-id="${id}"]`).length >= 5, KEY_ID)
  const feedText = await page.textContent('#feed')
  check(feedText.includes('method_not_allowed'), 'the denial and its violation code are in the feed')
  check(feedText.includes('eth_signTransaction') && feedText.includes('0.01 ETH'), 'the allowed transaction is summarized')
  check(await page.locator('#feed li[data-decision="deny"]').count() >= 1, 'a denied row')
  check(await page.locator('#feed li[data-decision="allow"]').count() >= 2, 'allowed rows')
  step('live feed shows allowed and denied requests')

  // 4. The key's detail: readable policy, spend chart against the cap, recent activity.
  await page.waitForFunction((id) => /ago/.test(document.querySelector(`#keys tr[data-key-id="${id}"]`)?.textContent ?? ''), KEY_ID)
  await row.locator('a.key').click()
  await page.locator('#detail figure.chart svg path.spend').waitFor()
  const detail = await page.textContent('#detail')
  check(detail.includes('spend cap, ETH') && detail.includes('method_not_allowed'), 'detail shows the caps and recent activity')
  check((await page.locator('#detail table.recent tbody tr').count()) >= 3, 'recent activity rows')
  step('key detail with chart')

  // 5. Verify the audit log.
  await page.click('#verify')
  await page.waitForFunction(() => document.getElementById('verify-result').dataset.ok === 'true')
  summary.verify = await page.textContent('#verify-result')
  step(summary.verify)

  await page.screenshot({ path: SCREENSHOT, fullPage: true })
  step(`screenshot ${SCREENSHOT}`)

  // 6. Revoke from the UI: cancel first (nothing happens), then confirm.
  await row.locator('button.revoke').click()
  await page.locator('#confirm').waitFor({ state: 'visible' })
  check((await page.textContent('#confirm')).includes(KEY_ID), 'the dialog names the key')
  await page.click('#confirm-cancel')
  await page.locator('#confirm').waitFor({ state: 'hidden' })
  check((await rpc(AGENT, 'eth_chainId')).result !== undefined, 'cancel left the key working')
  await row.locator('button.revoke').click()
  await page.click('#confirm-ok')
  await page.waitForSelector(`#keys tr[data-key-id="${KEY_ID}"][data-status="revoked"]`)
  step('revoked through the confirmation dialog')

  // 7. The agent's next request: 4100 revoked, and the feed shows the refusal.
  const after = await rpc(AGENT, 'eth_chainId')
  check(after.error?.code === 4100 && after.error?.data?.reason === 'revoked', `4100 revoked: ${JSON.stringify(after)}`)
  summary.after_revoke = after.error
  await page.waitForFunction(() => /refused: revoked/.test(document.getElementById('feed').textContent))
  step('agent refused with 4100 revoked')

  // 8. A burst: how the feed copes (measured, not asserted beyond the row cap).
  await page.evaluate(() => {
    window.__frames = { last: performance.now(), maxGap: 0, n: 0 }
    const f = () => {
      const now = performance.now()
      window.__frames.maxGap = Math.max(window.__frames.maxGap, now - window.__frames.last)
      window.__frames.last = now
      window.__frames.n++
      if (!window.__frames.stop) requestAnimationFrame(f)
    }
    requestAnimationFrame(f)
  })
  const before = Number(await page.getAttribute('#feed', 'data-received'))
  const t0 = performance.now()
  let next = 0
  const worker = async () => {
    while (next < LOAD_REQUESTS) {
      next++
      await rpc(LOAD_KEY, 'eth_chainId')
    }
  }
  await Promise.all(Array.from({ length: 32 }, worker))
  const sent = performance.now() - t0
  const target = before + LOAD_REQUESTS
  // A subscriber too slow for the server's buffer would miss events (the server never waits
  // for it): count what arrived rather than insist on all of it.
  await page
    .waitForFunction((n) => Number(document.getElementById('feed').dataset.received) >= n, target, { timeout: 30000 })
    .catch(() => {})
  const shown = performance.now() - t0
  const received = Number(await page.getAttribute('#feed', 'data-received')) - before
  const frames = await page.evaluate(() => { window.__frames.stop = true; return window.__frames })
  const rows = await page.locator('#feed li').count()
  check(rows <= 200, `the feed keeps at most 200 rows (${rows})`)
  summary.burst = {
    requests: LOAD_REQUESTS,
    requests_per_s: Math.round(LOAD_REQUESTS / (sent / 1000)),
    received_in_feed: received,
    all_in_feed_after_ms: Math.round(shown),
    feed_rows: rows,
    frames: frames.n,
    max_frame_gap_ms: Math.round(frames.maxGap),
  }
  step(`burst: ${JSON.stringify(summary.burst)}`)

  // 9. The kill switch, which asks for a typed confirmation.
  await page.click('#kill')
  await page.locator('#confirm').waitFor({ state: 'visible' })
  check(await page.isDisabled('#confirm-ok'), 'the kill switch needs the typed word')
  await page.fill('#confirm-typed', 'revoke all')
  await page.click('#confirm-ok')
  await page.waitForFunction(() => [...document.querySelectorAll('#keys tbody tr')].every((r) => r.dataset.status === 'revoked'))
  const load = await rpc(LOAD_KEY, 'eth_chainId')
  check(load.error?.code === 4100, `kill switch cut off the other key: ${JSON.stringify(load)}`)
  step('kill switch revoked every key')

  // 10. Log out: the token and the data are gone.
  await page.click('#logout')
  check((await page.evaluate(() => sessionStorage.length)) === 0, 'logout forgets the token')
  const left = await page.content()
  const at = left.indexOf(KEY_ID)
  check(at < 0 && !page.url().includes(KEY_ID), `logout clears the data: ${left.slice(Math.max(0, at - 200), at + 50)}`)
  step('logged out')
  check(problems.length === 0, `no page errors or CSP violations: ${problems.join(' | ')}`)
} catch (e) {
  failed = e
} finally {
  await browser.close()
}
if (problems.length) summary.problems = problems
if (failed) {
  summary.error = String(failed.stack ?? failed)
  console.log(JSON.stringify(summary))
  process.exit(1)
}
console.log(JSON.stringify(summary))
