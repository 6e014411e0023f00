//! `racy-server [PORT] [WINDOW_MS]`: run the test server on 127.0.0.1 until interrupted.

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let window: u64 = args.next().and_then(|w| w.parse().ok()).unwrap_or(20);
    let server =
        match racy_server::RacyServer::start_on(port, std::time::Duration::from_millis(window))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("racy-server: {e}");
                std::process::exit(1);
            }
        };
    println!("http://{}", server.addr);
    let _ = tokio::signal::ctrl_c().await;
}
