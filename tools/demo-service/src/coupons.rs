//! A one-time coupon: check `redeemed`, then set it (racy) / a conditional update (correct).

use aws_sdk_dynamodb::types::AttributeValue;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::store::{internal, num, COUPONS};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{code}", get(get_coupon).put(issue_coupon))
        .route("/{code}/redeem", post(redeem))
        .route("/{code}/redeem-atomic", post(redeem_atomic))
}

pub async fn get_coupon(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<axum::Json<Value>, StatusCode> {
    let out = state
        .db
        .get_item()
        .table_name(COUPONS)
        .key("id", AttributeValue::S(code.clone()))
        .consistent_read(true)
        .send()
        .await
        .map_err(internal)?;
    let item = out.item().ok_or(StatusCode::NOT_FOUND)?;
    let redeemed = item
        .get("redeemed")
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false);
    Ok(axum::Json(
        json!({ "code": code, "redeemed": redeemed, "redemptions": num(item, "redemptions") }),
    ))
}

/// Issues (or re-issues) an unused coupon.
pub async fn issue_coupon(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<StatusCode, StatusCode> {
    state
        .db
        .put_item()
        .table_name(COUPONS)
        .item("id", AttributeValue::S(code))
        .item("redeemed", AttributeValue::Bool(false))
        .item("redemptions", AttributeValue::N("0".into()))
        .send()
        .await
        .map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Racy: several requests can all see the coupon unused and all redeem it.
pub async fn redeem(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<StatusCode, StatusCode> {
    let out = state
        .db
        .get_item()
        .table_name(COUPONS)
        .key("id", AttributeValue::S(code.clone()))
        .consistent_read(true)
        .send()
        .await
        .map_err(internal)?;
    let item = out.item().ok_or(StatusCode::NOT_FOUND)?;
    let redeemed = item
        .get("redeemed")
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false);
    if redeemed {
        return Err(StatusCode::CONFLICT);
    }
    state.pause().await;
    state
        .db
        .update_item()
        .table_name(COUPONS)
        .key("id", AttributeValue::S(code))
        .update_expression("SET redeemed = :t ADD redemptions :one")
        .expression_attribute_values(":t", AttributeValue::Bool(true))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await
        .map_err(internal)?;
    Ok(StatusCode::OK)
}

/// Correct: redeemed only if still unused; the losers get 409.
pub async fn redeem_atomic(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<StatusCode, StatusCode> {
    let result = state
        .db
        .update_item()
        .table_name(COUPONS)
        .key("id", AttributeValue::S(code))
        .update_expression("SET redeemed = :t ADD redemptions :one")
        .condition_expression("attribute_exists(id) AND redeemed = :f")
        .expression_attribute_values(":t", AttributeValue::Bool(true))
        .expression_attribute_values(":f", AttributeValue::Bool(false))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(StatusCode::OK),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Err(StatusCode::CONFLICT)
        }
        Err(e) => Err(internal(e)),
    }
}
