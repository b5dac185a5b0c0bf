use alloy::primitives::{Address, Bytes, U256};
use valet_chain::{Anvil, NonceManager, Upstream};

use crate::sign_tx;

/// 20 requests racing for the same wallet: each leases, signs, sends, then commits. The
/// nonces are 20 consecutive numbers and every transaction is mined.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_leases_give_consecutive_nonces() {
    let anvil = Anvil::spawn().await.unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    let key = anvil.dev_key(2);
    let manager = NonceManager::new(upstream.clone(), key.address());

    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let (manager, upstream, key) = (manager.clone(), upstream.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let lease = manager.lease().await.unwrap();
            let nonce = lease.nonce();
            let to = Address::repeat_byte(0x10);
            let raw = sign_tx(&upstream, &key, nonce, to, U256::from(i + 1), Bytes::new()).await;
            let hash = upstream.send_raw(&raw).await.unwrap();
            lease.commit();
            (nonce, hash)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let mut nonces: Vec<u64> = results.iter().map(|(n, _)| *n).collect();
    nonces.sort_unstable();
    assert_eq!(nonces, (0..20).collect::<Vec<_>>());
    for (nonce, hash) in &results {
        assert!(
            upstream
                .wait_for_receipt(*hash, std::time::Duration::from_secs(10))
                .await
                .unwrap(),
            "nonce {nonce}"
        );
    }
    assert_eq!(upstream.pending_nonce(key.address()).await.unwrap(), 20);
    assert_eq!(manager.lease().await.unwrap().nonce(), 20);
}

/// A request that fails after leasing (denied, signing failed, broadcast failed) drops its
/// lease: the next request gets the same nonce, so there is no gap.
#[tokio::test]
async fn a_dropped_lease_is_reused() {
    let anvil = Anvil::spawn().await.unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    let key = anvil.dev_key(4);
    let manager = NonceManager::new(upstream.clone(), key.address());

    let first = manager.lease().await.unwrap();
    assert_eq!(first.nonce(), 0);
    drop(first);
    let second = manager.lease().await.unwrap();
    assert_eq!(second.nonce(), 0);
    let raw = sign_tx(
        &upstream,
        &key,
        second.nonce(),
        Address::repeat_byte(1),
        U256::from(1u64),
        Bytes::new(),
    )
    .await;
    let hash = upstream.send_raw(&raw).await.unwrap();
    second.commit();
    assert!(
        upstream
            .wait_for_receipt(hash, std::time::Duration::from_secs(10))
            .await
            .unwrap()
    );

    let third = manager.lease().await.unwrap();
    assert_eq!(third.nonce(), 1);
    drop(third);
    assert_eq!(manager.lease().await.unwrap().nonce(), 1);
}

/// Leases serve from the cache (no node read) until `resync`, which makes the next lease read
/// the node's pending count: the recovery from "nonce too low" after the wallet sent a
/// transaction outside Valet.
#[tokio::test]
async fn resync_rereads_the_pending_count() {
    let anvil = Anvil::spawn().await.unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    let key = anvil.dev_key(5);
    let manager = NonceManager::new(upstream.clone(), key.address());
    assert_eq!(manager.wallet(), key.address());

    drop(manager.lease().await.unwrap()); // caches 0
    // The wallet sends nonce 0 itself, behind the manager's back.
    let outside = sign_tx(
        &upstream,
        &key,
        0,
        Address::repeat_byte(2),
        U256::from(1u64),
        Bytes::new(),
    )
    .await;
    upstream.send_raw(&outside).await.unwrap();

    let stale = manager.lease().await.unwrap();
    assert_eq!(stale.nonce(), 0, "the cache is not re-read on every lease");
    let raw = sign_tx(
        &upstream,
        &key,
        stale.nonce(),
        Address::repeat_byte(3),
        U256::from(1u64),
        Bytes::new(),
    )
    .await;
    let err = upstream.send_raw(&raw).await.unwrap_err();
    assert!(err.is_nonce_too_low(), "{err:?}");
    // Resync while still holding the lease: must not deadlock.
    manager.resync().await;
    drop(stale);

    let fresh = manager.lease().await.unwrap();
    assert_eq!(fresh.nonce(), 1);
    let raw = sign_tx(
        &upstream,
        &key,
        fresh.nonce(),
        Address::repeat_byte(3),
        U256::from(1u64),
        Bytes::new(),
    )
    .await;
    let hash = upstream.send_raw(&raw).await.unwrap();
    fresh.commit();
    assert!(
        upstream
            .wait_for_receipt(hash, std::time::Duration::from_secs(10))
            .await
            .unwrap()
    );

    // A committed lease whose transaction never reached the node (sign-only) advances the
    // cache; resync brings it back to what the node knows.
    manager.lease().await.unwrap().commit(); // nonce 2, signed but never sent
    assert_eq!(manager.lease().await.unwrap().nonce(), 3);
    manager.resync().await;
    assert_eq!(manager.lease().await.unwrap().nonce(), 2);
}

/// A lease held by one request makes the next wait; the lock is fair.
#[tokio::test]
async fn a_held_lease_blocks_the_next() {
    let anvil = Anvil::spawn().await.unwrap();
    let upstream = Upstream::connect(&anvil.url()).await.unwrap();
    let manager = NonceManager::new(upstream, anvil.dev_key(6).address());
    let held = manager.lease().await.unwrap();
    let waiting =
        tokio::time::timeout(std::time::Duration::from_millis(100), manager.lease()).await;
    assert!(
        waiting.is_err(),
        "a second lease while one is held must wait"
    );
    held.commit();
    assert_eq!(manager.lease().await.unwrap().nonce(), 1);
}

/// A second process sends from the same account (as `valet wallet delegate` does while the
/// gateway runs): the first sender's cached nonce is stale, and its next send reads the nonce
/// again instead of failing "nonce too low".
#[tokio::test]
async fn a_sender_recovers_from_a_nonce_used_elsewhere() {
    let anvil = Anvil::spawn().await.unwrap();
    let key = anvil.dev_key(3);
    let wallet = || alloy::network::EthereumWallet::from(key.clone());
    let gateway = valet_chain::Sender::new(&anvil.url(), wallet())
        .await
        .unwrap();
    let cli = valet_chain::Sender::new(&anvil.url(), wallet())
        .await
        .unwrap();
    let to = Address::repeat_byte(0x11);
    let first = gateway
        .call("first", to, U256::from(1), Vec::new())
        .await
        .unwrap();
    let elsewhere = cli
        .call("elsewhere", to, U256::from(2), Vec::new())
        .await
        .unwrap();
    let next = gateway
        .call("next", to, U256::from(3), Vec::new())
        .await
        .unwrap();
    assert_eq!((first.nonce, elsewhere.nonce, next.nonce), (0, 1, 2));
}
