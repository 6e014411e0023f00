//! Arrival spread of a 20-request burst at a loopback server that timestamps arrivals itself
//! (when each request has fully arrived), for the last-byte engine and for a naive concurrent
//! reqwest burst, in one run. `cargo bench --bench probe_spread`.

use std::time::Duration;

use racecheck::probe::burst;
use racecheck::probe::plan::{Plan, RequestSpec};
use racecheck::probe::safety::Policy;
use racy_server::RacyServer;
use serde_json::Value;

const N: usize = 20;
const RUNS: usize = 25;

async fn spread(client: &reqwest::Client, server: &RacyServer) -> Duration {
    let v: Value = client
        .get(server.url("/arrivals"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let us: Vec<u64> = v["arrivals_us"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(us.len(), N, "every request arrived");
    Duration::from_micros(us.iter().max().unwrap() - us.iter().min().unwrap())
}

async fn reset(client: &reqwest::Client, server: &RacyServer) {
    client
        .post(server.url("/arrivals/reset"))
        .send()
        .await
        .unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // The server runs on its own runtime, as a separate service would.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt
        .block_on(RacyServer::start(Duration::ZERO))
        .unwrap();
    let h2_server = server_rt
        .block_on(RacyServer::start_h2(Duration::ZERO))
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let plan = Plan {
            target: RequestSpec { method: Some("POST".into()), url: server.url("/unlimited"), headers: Default::default(), body: serde_json::json!({"by": 1}) },
            observe: None,
            create: None,
            reset: None,
            mode: Default::default(),
            concurrency: Some(N as u32),
            rounds: Some(1),
            expect: Default::default(),
            http2: false,
            request_timeout_ms: None,
            max_duration_ms: None,
            interleave: None,
        };
        let (addr, bytes) = racecheck::probe::request_bytes(&plan, &Policy::default()).unwrap();
        let (mut last_byte, mut naive, mut release) = (vec![], vec![], vec![]);
        for _ in 0..RUNS {
            reset(&client, &server).await;
            let b = burst::last_byte(addr, &bytes, N, racecheck::probe::DEFAULT_TIMEOUT).await.unwrap();
            assert!(b.outcomes.iter().all(|o| o.status == Some(200)));
            release.push(b.release_spread);
            last_byte.push(spread(&client, &server).await);

            reset(&client, &server).await;
            let fresh = reqwest::Client::new();
            let o = burst::naive(&fresh, reqwest::Method::POST, &server.url("/unlimited"), Some("{\"by\":1}".into()), N).await;
            assert!(o.iter().all(|o| o.status == Some(200)));
            naive.push(spread(&client, &server).await);
        }
        // HTTP/2 single packet against the same routes on an h2c server.
        let mut single = vec![];
        for _ in 0..RUNS {
            h2_server.reset_arrivals();
            let req = http::Request::post(h2_server.url("/unlimited")).header("content-type", "application/json").body(()).unwrap();
            let b = burst::single_packet(h2_server.addr, req, b"{\"by\":1}", N, racecheck::probe::DEFAULT_TIMEOUT).await.unwrap();
            assert!(b.outcomes.iter().all(|o| o.status == Some(200)), "{:?}", b.outcomes[0]);
            let (spread, n) = h2_server.arrival_spread();
            assert_eq!(n, N);
            single.push(spread);
        }
        println!("{N}-request HTTP/2 single-packet burst, median of {RUNS}: arrival spread {} us", median(single).as_micros());
        let (lb, nv, rl) = (median(last_byte), median(naive), median(release));
        println!(
            "{N}-request burst, median of {RUNS}: last-byte arrival spread {} us (client release spread {} us); naive reqwest burst {} us; naive / last-byte = {:.1}x",
            lb.as_micros(),
            rl.as_micros(),
            nv.as_micros(),
            nv.as_secs_f64() / lb.as_secs_f64().max(1e-9)
        );
    });
}
