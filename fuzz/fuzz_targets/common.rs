// Shared set-up of the fuzz targets: policies that exercise every branch of the evaluator.
use alloy_primitives::{Address, address};
use valet_policy::{Context, Policy};

pub const WALLET: Address = address!("0x00000000000000000000000000000000000000a1");

pub fn policies() -> Vec<Policy> {
    [
        include_str!("../../crates/valet-policy/benches/data/swap-only-20-rules.toml"),
        "profile = \"full-access\"\nexpires_in = \"1d\"\n[[deny]]\nfunctions = [\"transfer(address to, uint256 amount)\"]\n[deny.args]\nto = \"!= $self\"\n",
        "profile = \"custom\"\nexpires_in = \"1d\"\n[[allow]]\nfunctions = [\"approve(address spender, uint256 amount)\"]\n[allow.args]\nspender = \"$router\"\namount = \"<= 1000\"\n[typed_data]\nallow = [{ name = \"Permit2\" }]\n",
    ]
    .iter()
    .map(|src| Policy::from_toml(src).expect("fuzz policies parse"))
    .collect()
}

pub fn context() -> Context {
    let now = "2026-12-01T10:00:00Z".parse().expect("time");
    Context {
        wallet: WALLET,
        chain_id: 1,
        now,
        issued_at: now,
        client_ip: Some([127, 0, 0, 1].into()),
        revoked: false,
    }
}
