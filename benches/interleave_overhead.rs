//! What the interleaving proxy adds to a request when it holds nothing: the same GetItem-shaped
//! requests sent straight to a loopback upstream (the racy test server, answering at once) and
//! through a disarmed proxy, one at a time on a kept-alive connection. `cargo bench --bench interleave_overhead`.

use std::time::{Duration, Instant};

use racecheck::probe::interleave::Proxy;
use racy_server::RacyServer;
use tokio::net::TcpListener;

const REQUESTS: usize = 3_000;

async fn run(client: &reqwest::Client, url: &str) -> Vec<Duration> {
    let mut times = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let t = Instant::now();
        let r = client
            .post(url)
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .header("content-type", "application/x-amz-json-1.0")
            .body(r#"{"TableName":"counters","Key":{"id":{"S":"a"}}}"#)
            .send()
            .await
            .unwrap();
        r.bytes().await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    times
}

fn pct(t: &[Duration], p: f64) -> Duration {
    t[((t.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // An upstream that answers at once (the racy test server: a POST to `/counter` is answered at once).
        let server = RacyServer::start_on(0, Duration::ZERO).await.unwrap();
        let up = server.url("/").trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = l.local_addr().unwrap();
        tokio::spawn(Proxy::default().serve(l, up));
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        // Warm both paths, then measure.
        run(&client, &format!("http://{up}/counter")).await;
        run(&client, &format!("http://{proxy_addr}/counter")).await;
        let direct = run(&client, &format!("http://{up}/counter")).await;
        let proxied = run(&client, &format!("http://{proxy_addr}/counter")).await;
        for (name, t) in [("direct", &direct), ("through the proxy", &proxied)] {
            println!(
                "{name:>18}: median {:>7.1} us, p90 {:>7.1} us, p99 {:>7.1} us ({REQUESTS} requests)",
                pct(t, 0.5).as_secs_f64() * 1e6,
                pct(t, 0.9).as_secs_f64() * 1e6,
                pct(t, 0.99).as_secs_f64() * 1e6
            );
        }
        let added = pct(&proxied, 0.5).as_secs_f64() - pct(&direct, 0.5).as_secs_f64();
        println!("added by the proxy: {:.1} us per request (median)", added * 1e6);
    });
}
