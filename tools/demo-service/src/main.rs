//! The racecheck demo: an Axum 0.8 service on DynamoDB with, for each scenario, a racy
//! endpoint written the way real services write them and a correct one beside it.
//!
//! `AWS_ENDPOINT_URL_DYNAMODB` (e.g. `http://127.0.0.1:8000`) points it at a DynamoDB-compatible server;
//! `PORT` (default 3000) is where it listens on 127.0.0.1. `RACE_WINDOW_MS` widens the gap
//! between read and write in the racy handlers so a small burst shows the race reliably.

mod accounts;
mod counters;
mod coupons;
#[rustfmt::skip]
mod fixed;
mod profiles;
mod store;

use std::time::Duration;

use axum::routing::{get, post, put};
use axum::Router;

#[derive(Clone)]
pub struct AppState {
    pub db: aws_sdk_dynamodb::Client,
    /// Extra time between a racy handler's read and its write.
    pub race_window: Duration,
}

impl AppState {
    /// Give concurrent requests the chance to interleave (a slow network or a GC pause in
    /// production).
    pub async fn pause(&self) {
        if !self.race_window.is_zero() {
            tokio::time::sleep(self.race_window).await;
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/counters", counters::router())
        .nest("/accounts", accounts::router())
        .nest("/coupons", coupons::router())
        .route(
            "/profiles/{id}",
            get(profiles::get_profile).put(profiles::update_profile),
        )
        .route(
            "/profiles/{id}/checked",
            put(profiles::update_profile_checked),
        )
        .route("/transfers", post(accounts::transfer))
        .route("/transfers/atomic", post(accounts::transfer_atomic))
        .route("/health", get(|| async { "ok" }))
        .with_state(state)
}

#[tokio::main]
async fn main() {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let endpoint = (var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| var("DYNAMODB_ENDPOINT")))
        .unwrap_or_else(|| "http://127.0.0.1:8000".into());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let window = std::env::var("RACE_WINDOW_MS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(20);
    let db = store::client(&endpoint);
    if let Err(e) = store::create_tables(&db).await {
        eprintln!("demo-service: cannot create tables at {endpoint}: {e}");
        std::process::exit(1);
    }
    let state = AppState {
        db,
        race_window: Duration::from_millis(window),
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo-service: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("demo-service: listening on http://127.0.0.1:{port} (DynamoDB at {endpoint})");
    if let Err(e) = axum::serve(listener, router(state)).await {
        eprintln!("demo-service: {e}");
        std::process::exit(1);
    }
}
