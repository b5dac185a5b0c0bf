"""An agent written with web3.py, the way its documentation says to use a node-managed account:
the gateway's /rpc with the agent key as a bearer token, the account from `eth.accounts`.

Run by crates/valet-cli/tests/cli.rs (web3py_client) against anvil, the sandbox contracts and
`valet serve`. It approves the router, swaps tUSD for ETH paid to the wallet, then tries a tUSD
transfer to a stranger, which the swap-only key must refuse with 4001.

Environment: VALET_RPC_URL, VALET_AGENT_KEY, TOKEN, ROUTER, WETH, STRANGER, SWAP_AMOUNT (base
units of tUSD). Prints one JSON line (the summary) on stdout; exits 0 when every step behaved as
expected, 1 when one did not, 2 when web3 is not installed.
"""

import json
import os
import sys
import traceback

try:
    from web3 import Web3
    from web3.exceptions import Web3RPCError
except ImportError as e:
    print(f"web3 is not installed: run ./tools/install.sh ({e})", file=sys.stderr)
    sys.exit(2)

ERC20_ABI = [
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function",
        "name": "transfer",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]
ROUTER_ABI = [
    {
        "type": "function",
        "name": "swapExactTokensForETH",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "amountIn", "type": "uint256"},
            {"name": "amountOutMin", "type": "uint256"},
            {"name": "path", "type": "address[]"},
            {"name": "to", "type": "address"},
            {"name": "deadline", "type": "uint256"},
        ],
        "outputs": [{"name": "amounts", "type": "uint256[]"}],
    }
]


def env(name):
    value = os.environ.get(name)
    if not value:
        print(f"missing environment variable {name}", file=sys.stderr)
        sys.exit(1)
    return value


def main():
    url = env("VALET_RPC_URL")
    key = env("VALET_AGENT_KEY")
    token_addr = Web3.to_checksum_address(env("TOKEN"))
    router_addr = Web3.to_checksum_address(env("ROUTER"))
    weth = Web3.to_checksum_address(env("WETH"))
    stranger = Web3.to_checksum_address(env("STRANGER"))
    swap_amount = int(env("SWAP_AMOUNT"))

    w3 = Web3(
        Web3.HTTPProvider(
            url,
            request_kwargs={"headers": {"Authorization": f"Bearer {key}"}, "timeout": 30},
        )
    )
    summary = {"steps": []}
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)

    try:
        account = w3.eth.accounts[0]
        summary["account"] = account
        summary["chain_id"] = w3.eth.chain_id
        check(summary["chain_id"] == 31337, f"chain id {summary['chain_id']}")
        token = w3.eth.contract(address=token_addr, abi=ERC20_ABI)
        router = w3.eth.contract(address=router_addr, abi=ROUTER_ABI)

        # 1. Approve the trusted router.
        tx = token.functions.approve(router_addr, 2**256 - 1).build_transaction({"from": account})
        approve_hash = w3.eth.send_transaction(tx)
        receipt = w3.eth.wait_for_transaction_receipt(approve_hash, timeout=20)
        summary["steps"].append(
            {"step": "approve", "hash": approve_hash.to_0x_hex(), "status": receipt["status"]}
        )
        check(receipt["status"] == 1, f"approve receipt status {receipt['status']}")

        # 2. Swap tUSD for ETH, paid to the wallet.
        before = token.functions.balanceOf(account).call()
        eth_before = w3.eth.get_balance(account)
        swap_hash = router.functions.swapExactTokensForETH(
            swap_amount, 1, [token_addr, weth], account, 4_000_000_000
        ).transact({"from": account})
        receipt = w3.eth.wait_for_transaction_receipt(swap_hash, timeout=20)
        after = token.functions.balanceOf(account).call()
        eth_after = w3.eth.get_balance(account)
        summary["steps"].append(
            {
                "step": "swap",
                "hash": swap_hash.to_0x_hex(),
                "status": receipt["status"],
                "token_before": str(before),
                "token_after": str(after),
                "eth_gained": eth_after > eth_before,
            }
        )
        check(receipt["status"] == 1, f"swap receipt status {receipt['status']}")
        check(before - after == swap_amount, f"token balance dropped by {before - after}")

        # 3. A tUSD transfer to a stranger: the swap-only key refuses it.
        try:
            h = token.functions.transfer(stranger, 1).transact({"from": account})
            summary["steps"].append({"step": "transfer", "hash": h.to_0x_hex()})
            check(False, f"the transfer to a stranger was sent: {h.to_0x_hex()}")
        except Web3RPCError as e:
            error = (e.rpc_response or {}).get("error") or {}
            data = error.get("data") or {}
            summary["steps"].append(
                {
                    "step": "transfer",
                    "error": type(e).__name__,
                    "code": error.get("code"),
                    "violations": [v.get("code") for v in data.get("violations", [])],
                    "request_id": data.get("request_id"),
                }
            )
            check(error.get("code") == 4001, f"transfer error {error}")
            violations = data.get("violations") or [{}]
            check(
                violations[0].get("code") == "function_not_allowed",
                f"transfer violations {data}",
            )

        # 4. What remains of the daily cap, as the agent sees it.
        perms = w3.provider.make_request("valet_getPermissions", [])
        spend = ((perms.get("result") or {}).get("limits") or {}).get("spend") or []
        summary["remaining"] = [s.get("remaining") for s in spend]
    except Exception as e:  # noqa: BLE001 - report anything unexpected in the summary
        failures.append(f"unexpected error: {type(e).__name__}: {e}\n{traceback.format_exc()}")

    summary["failures"] = failures
    print(json.dumps(summary))
    for f in failures:
        print(f"web3 agent: {f}", file=sys.stderr)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
