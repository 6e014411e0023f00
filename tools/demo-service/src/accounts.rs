//! Accounts: a withdrawal that checks the balance and then writes (racy) / one conditional
//! update (correct); a transfer as two updates (racy) / one transaction (correct).

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use axum::extract::{Json, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::store::{internal, num, ACCOUNTS};
use crate::AppState;

#[derive(Deserialize)]
pub struct Amount {
    pub amount: i64,
}

#[derive(Deserialize)]
pub struct Transfer {
    pub from: String,
    pub to: String,
    pub amount: i64,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{id}", get(get_account).put(open_account))
        .route("/{id}/withdraw", post(withdraw))
        .route("/{id}/withdraw-atomic", post(withdraw_atomic))
}

pub async fn get_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, StatusCode> {
    let out = state
        .db
        .get_item()
        .table_name(ACCOUNTS)
        .key("id", AttributeValue::S(id.clone()))
        .consistent_read(true)
        .send()
        .await
        .map_err(internal)?;
    let item = out.item().ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(json!({ "id": id, "balance": num(item, "balance") })))
}

/// Opens (or resets) an account with an opening balance: an idempotent full replacement.
pub async fn open_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Amount>,
) -> Result<StatusCode, StatusCode> {
    state
        .db
        .put_item()
        .table_name(ACCOUNTS)
        .item("id", AttributeValue::S(id))
        .item("balance", AttributeValue::N(body.amount.to_string()))
        .send()
        .await
        .map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Racy: every concurrent withdrawal can see enough money before any of them writes.
pub async fn withdraw(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Amount>,
) -> Result<Json<Value>, StatusCode> {
    let out = state
        .db
        .get_item()
        .table_name(ACCOUNTS)
        .key("id", AttributeValue::S(id.clone()))
        .consistent_read(true)
        .send()
        .await
        .map_err(internal)?;
    let item = out.item().ok_or(StatusCode::NOT_FOUND)?;
    let balance = num(item, "balance");
    if balance < body.amount {
        return Err(StatusCode::CONFLICT);
    }
    state.pause().await;
    let new_balance = balance - body.amount;
    state
        .db
        .update_item()
        .table_name(ACCOUNTS)
        .key("id", AttributeValue::S(id.clone()))
        .update_expression("SET balance = :b")
        .expression_attribute_values(":b", AttributeValue::N(new_balance.to_string()))
        .send()
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "id": id, "balance": new_balance })))
}

/// Correct: the check is the condition of the write; losing the race is a 409.
pub async fn withdraw_atomic(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Amount>,
) -> Result<Json<Value>, StatusCode> {
    let result = state
        .db
        .update_item()
        .table_name(ACCOUNTS)
        .key("id", AttributeValue::S(id.clone()))
        .update_expression("SET balance = balance - :amount")
        .condition_expression("balance >= :amount")
        .expression_attribute_values(":amount", AttributeValue::N(body.amount.to_string()))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
        .send()
        .await;
    match result {
        Ok(out) => {
            let balance = out.attributes().map(|a| num(a, "balance")).unwrap_or(0);
            Ok(Json(json!({ "id": id, "balance": balance })))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Err(StatusCode::CONFLICT)
        }
        Err(e) => Err(internal(e)),
    }
}

/// Racy: the debit and the credit are separate requests.
pub async fn transfer(
    State(state): State<AppState>,
    Json(t): Json<Transfer>,
) -> Result<StatusCode, StatusCode> {
    let result = state
        .db
        .update_item()
        .table_name(ACCOUNTS)
        .key("id", AttributeValue::S(t.from.clone()))
        .update_expression("SET balance = balance - :amount")
        .condition_expression("balance >= :amount")
        .expression_attribute_values(":amount", AttributeValue::N(t.amount.to_string()))
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            return Err(StatusCode::CONFLICT)
        }
        Err(e) => return Err(internal(e)),
    }
    state.pause().await;
    state
        .db
        .update_item()
        .table_name(ACCOUNTS)
        .key("id", AttributeValue::S(t.to.clone()))
        .update_expression("SET balance = balance + :amount")
        .expression_attribute_values(":amount", AttributeValue::N(t.amount.to_string()))
        .send()
        .await
        .map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Correct: both updates in one transaction, the debit conditioned on the balance.
pub async fn transfer_atomic(
    State(state): State<AppState>,
    Json(t): Json<Transfer>,
) -> Result<StatusCode, StatusCode> {
    let debit = Update::builder()
        .table_name(ACCOUNTS)
        .key("id", AttributeValue::S(t.from.clone()))
        .update_expression("SET balance = balance - :amount")
        .condition_expression("balance >= :amount")
        .expression_attribute_values(":amount", AttributeValue::N(t.amount.to_string()))
        .build()
        .map_err(internal)?;
    let credit = Update::builder()
        .table_name(ACCOUNTS)
        .key("id", AttributeValue::S(t.to.clone()))
        .update_expression("SET balance = balance + :amount")
        .expression_attribute_values(":amount", AttributeValue::N(t.amount.to_string()))
        .build()
        .map_err(internal)?;
    let result = state
        .db
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().update(debit).build())
        .transact_items(TransactWriteItem::builder().update(credit).build())
        .send()
        .await;
    match result {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_transaction_canceled_exception()) =>
        {
            Err(StatusCode::CONFLICT)
        }
        Err(e) => Err(internal(e)),
    }
}
