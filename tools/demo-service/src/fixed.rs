//! The racy `counters::incr` with racecheck's fix applied: the function below is the fix
//! snippet `racecheck scan tools/demo-service` suggests for it, pasted unchanged (a test keeps
//! it in step with racecheck). `counters::incr_fixed` calls it.

/// Changes the number in one atomic update expression.
pub async fn incr_atomic(
    client: &aws_sdk_dynamodb::Client,
    id: &str,
    by: i64,
) -> Result<(), axum::http::StatusCode> {
    use aws_sdk_dynamodb::types::AttributeValue;
    use axum::http::StatusCode;

    let result = client
        .update_item()
        .table_name("counters")
        .key("id", AttributeValue::S(id.to_owned()))
        .update_expression("SET #value = if_not_exists(#value, :zero) + :by")
        .expression_attribute_names("#value", "value")
        .expression_attribute_values(":zero", AttributeValue::N("0".to_string()))
        .expression_attribute_values(":by", AttributeValue::N(by.to_string()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
            Err(StatusCode::CONFLICT)
        }
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}
