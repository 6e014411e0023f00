//! A counter: read, add in Rust, write back (racy) / one atomic `ADD` (correct).

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use axum::extract::{Json, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::store::{internal, num, COUNTERS};
use crate::AppState;

#[derive(Deserialize)]
pub struct Incr {
    #[serde(default = "one")]
    pub by: i64,
}

fn one() -> i64 {
    1
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{id}", get(get_counter))
        .route("/{id}/incr", post(incr))
        .route("/{id}/incr-atomic", post(incr_atomic))
        .route("/{id}/incr-fixed", post(incr_fixed))
}

pub async fn get_counter(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, StatusCode> {
    let out = state
        .db
        .get_item()
        .table_name(COUNTERS)
        .key("id", AttributeValue::S(id.clone()))
        .consistent_read(true)
        .send()
        .await
        .map_err(internal)?;
    let value = out.item().map(|i| num(i, "value")).unwrap_or(0);
    Ok(Json(json!({ "id": id, "value": value })))
}

/// Racy: two requests read the same value and both write `value + by`.
pub async fn incr(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Incr>,
) -> Result<Json<Value>, StatusCode> {
    let out = state
        .db
        .get_item()
        .table_name(COUNTERS)
        .key("id", AttributeValue::S(id.clone()))
        .consistent_read(true)
        .send()
        .await
        .map_err(internal)?;
    let current = out.item().map(|i| num(i, "value")).unwrap_or(0);
    state.pause().await;
    let next = current + body.by;
    state
        .db
        .put_item()
        .table_name(COUNTERS)
        .item("id", AttributeValue::S(id.clone()))
        .item("value", AttributeValue::N(next.to_string()))
        .send()
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "id": id, "value": next })))
}

/// Correct: DynamoDB adds atomically.
pub async fn incr_atomic(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Incr>,
) -> Result<Json<Value>, StatusCode> {
    let out = state
        .db
        .update_item()
        .table_name(COUNTERS)
        .key("id", AttributeValue::S(id.clone()))
        .update_expression("ADD #v :by")
        .expression_attribute_names("#v", "value")
        .expression_attribute_values(":by", AttributeValue::N(body.by.to_string()))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .map_err(internal)?;
    let value = out.attributes().map(|a| num(a, "value")).unwrap_or(0);
    Ok(Json(json!({ "id": id, "value": value })))
}

/// The racy `incr` after applying racecheck's fix (`crate::fixed`, its suggestion verbatim).
pub async fn incr_fixed(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Incr>,
) -> Result<axum::http::StatusCode, StatusCode> {
    crate::fixed::incr_atomic(&state.db, &id, body.by).await?;
    Ok(StatusCode::NO_CONTENT)
}
