//! The DynamoDB client and tables, and the small helpers handlers share.

use std::collections::HashMap;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use axum::http::StatusCode;

pub const COUNTERS: &str = "counters";
pub const ACCOUNTS: &str = "accounts";
pub const COUPONS: &str = "coupons";
pub const PROFILES: &str = "profiles";

pub fn client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("dev", "dev", None, None, "demo-static"))
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}

/// Every table is keyed by a string `id`.
pub async fn create_tables(db: &Client) -> Result<(), String> {
    let existing = db
        .list_tables()
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?
        .table_names
        .unwrap_or_default();
    for table in [COUNTERS, ACCOUNTS, COUPONS, PROFILES] {
        if existing.iter().any(|t| t == table) {
            continue;
        }
        db.create_table()
            .table_name(table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
}

pub fn internal<E: std::fmt::Debug>(e: E) -> StatusCode {
    tracing::error!("dynamodb: {e:?}");
    StatusCode::INTERNAL_SERVER_ERROR
}

/// A number attribute of an item (0 when missing).
pub fn num(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
