use std::time::Instant;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolCall;
use valet_chain::contracts::{self, LIQUIDITY_ETH, LIQUIDITY_TOKEN, Sandbox, abi};
use valet_chain::{Anvil, Error, Upstream};

use crate::{eth_balance, sign_tx};

const ETH: u64 = 1_000_000_000_000_000_000;

async fn deploy(anvil: &Anvil) -> Sandbox {
    let started = Instant::now();
    let sandbox = contracts::deploy_sandbox(&anvil.url(), EthereumWallet::from(anvil.dev_key(0)))
        .await
        .unwrap();
    eprintln!("deploy_sandbox took {:?}", started.elapsed());
    sandbox
}

async fn call<C: SolCall>(upstream: &Upstream, to: Address, call: C) -> C::Return {
    let output = upstream.call(to, &call.abi_encode().into()).await.unwrap();
    C::abi_decode_returns(&output).unwrap()
}

#[tokio::test]
async fn deployed_sandbox_swaps_through_router02() {
    let anvil = Anvil::spawn().await.unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    let sandbox = deploy(&anvil).await;
    let deployer = anvil.dev_key(0).address();

    // The token is what it says.
    assert_eq!(
        call(
            &upstream,
            sandbox.token,
            abi::ITestStablecoin::decimalsCall {}
        )
        .await,
        6
    );
    assert_eq!(
        call(
            &upstream,
            sandbox.token,
            abi::ITestStablecoin::symbolCall {}
        )
        .await,
        "tUSD"
    );
    assert_eq!(
        call(&upstream, sandbox.token, abi::ITestStablecoin::ownerCall {}).await,
        deployer
    );
    // The pool holds the liquidity, at the address Router02 computes.
    assert_eq!(
        sandbox.pair,
        contracts::pair_address(sandbox.factory, sandbox.token, sandbox.weth)
    );
    let reserves = call(
        &upstream,
        sandbox.pair,
        abi::IUniswapV2Pair::getReservesCall {},
    )
    .await;
    let token0 = call(&upstream, sandbox.pair, abi::IUniswapV2Pair::token0Call {}).await;
    let (token_reserve, eth_reserve) = if token0 == sandbox.token {
        (reserves.reserve0, reserves.reserve1)
    } else {
        (reserves.reserve1, reserves.reserve0)
    };
    assert_eq!(U256::from(token_reserve), LIQUIDITY_TOKEN);
    assert_eq!(U256::from(eth_reserve), LIQUIDITY_ETH);

    // A real swap of 1 ETH for tUSD, signed by another dev key.
    let swapper = anvil.dev_key(1);
    let path = vec![sandbox.weth, sandbox.token];
    let quote = call(
        &upstream,
        sandbox.router,
        abi::IUniswapV2Router02::getAmountsOutCall {
            amountIn: U256::from(ETH),
            path: path.clone(),
        },
    )
    .await;
    let expected_out = quote[1];
    let swap = abi::IUniswapV2Router02::swapExactETHForTokensCall {
        amountOutMin: expected_out,
        path,
        to: swapper.address(),
        deadline: U256::MAX,
    };
    let before = contracts::token_balance(&anvil.url(), sandbox.token, swapper.address())
        .await
        .unwrap();
    assert_eq!(before, U256::ZERO);
    let raw = sign_tx(
        &upstream,
        &swapper,
        0,
        sandbox.router,
        U256::from(ETH),
        Bytes::from(swap.abi_encode()),
    )
    .await;
    let hash = upstream.send_raw(&raw).await.unwrap();
    assert!(
        upstream
            .wait_for_receipt(hash, std::time::Duration::from_secs(10))
            .await
            .unwrap()
    );
    let after = contracts::token_balance(&anvil.url(), sandbox.token, swapper.address())
        .await
        .unwrap();
    assert_eq!(after, expected_out);
    // 1 ETH at 2 000 tUSD/ETH, less the 0.3 % fee and the price impact.
    let (low, high) = (U256::from(1_990_000_000u64), U256::from(1_994_000_000u64));
    assert!(after > low && after < high, "{after}");
}

#[tokio::test]
async fn fund_mints_tokens_and_sends_eth() {
    let anvil = Anvil::spawn().await.unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    let sandbox = deploy(&anvil).await;
    let deployer = EthereumWallet::from(anvil.dev_key(0));
    let to = Address::repeat_byte(0xab);

    let amount = U256::from(1_234_000_000u64); // 1 234 tUSD
    contracts::fund(
        &anvil.url(),
        deployer.clone(),
        &sandbox,
        to,
        amount,
        U256::from(ETH),
    )
    .await
    .unwrap();
    assert_eq!(
        contracts::token_balance(&anvil.url(), sandbox.token, to)
            .await
            .unwrap(),
        amount
    );
    assert_eq!(eth_balance(&upstream, to).await, U256::from(ETH));

    // Again: balances add up; zero amounts are skipped.
    contracts::fund(&anvil.url(), deployer, &sandbox, to, amount, U256::ZERO)
        .await
        .unwrap();
    assert_eq!(
        contracts::token_balance(&anvil.url(), sandbox.token, to)
            .await
            .unwrap(),
        amount * U256::from(2u64)
    );
    assert_eq!(eth_balance(&upstream, to).await, U256::from(ETH));

    // Only the owner mints: anyone else's mint fails at the estimate with the node's revert.
    let stranger = EthereumWallet::from(anvil.dev_key(7));
    let err = contracts::fund(&anvil.url(), stranger, &sandbox, to, amount, U256::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Node { .. }), "{err:?}");
    assert_eq!(
        contracts::token_balance(&anvil.url(), sandbox.token, to)
            .await
            .unwrap(),
        amount * U256::from(2u64)
    );
}
