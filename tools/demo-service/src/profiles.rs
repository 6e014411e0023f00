//! Profiles with `If-Match`: the racy update ignores the version and puts the whole item; the
//! correct one writes only if the stored version is the one the client saw (412 otherwise).

use aws_sdk_dynamodb::types::AttributeValue;
use axum::extract::{Json, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::store::{internal, PROFILES};
use crate::AppState;

#[derive(Serialize, Deserialize, Default)]
pub struct Profile {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub bio: String,
    #[serde(default)]
    pub version: u64,
}

#[derive(Deserialize)]
pub struct ProfileChange {
    pub display_name: Option<String>,
    pub bio: Option<String>,
}

fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

fn if_match(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::IF_MATCH)?
        .to_str()
        .ok()?
        .trim_matches('"')
        .parse()
        .ok()
}

pub async fn get_profile(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, StatusCode> {
    let out = state
        .db
        .get_item()
        .table_name(PROFILES)
        .key("id", AttributeValue::S(id.clone()))
        .consistent_read(true)
        .send()
        .await
        .map_err(internal)?;
    let profile: Profile = match out.item {
        Some(item) => serde_dynamo::from_item(item).map_err(internal)?,
        None => Profile {
            id,
            ..Profile::default()
        },
    };
    Ok(([(header::ETAG, etag(profile.version))], Json(profile)).into_response())
}

/// Racy: reads the profile, applies the change and puts the whole item back, so a concurrent
/// change to another field is lost and `If-Match` is not enforced.
pub async fn update_profile(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(change): Json<ProfileChange>,
) -> Result<Response, StatusCode> {
    let out = state
        .db
        .get_item()
        .table_name(PROFILES)
        .key("id", AttributeValue::S(id.clone()))
        .consistent_read(true)
        .send()
        .await
        .map_err(internal)?;
    let mut profile: Profile = match out.item {
        Some(item) => serde_dynamo::from_item(item).map_err(internal)?,
        None => Profile {
            id: id.clone(),
            ..Profile::default()
        },
    };
    state.pause().await;
    if let Some(name) = change.display_name {
        profile.display_name = name;
    }
    if let Some(bio) = change.bio {
        profile.bio = bio;
    }
    profile.version += 1;
    let item = serde_dynamo::to_item(&profile).map_err(internal)?;
    state
        .db
        .put_item()
        .table_name(PROFILES)
        .set_item(Some(item))
        .send()
        .await
        .map_err(internal)?;
    Ok(([(header::ETAG, etag(profile.version))], Json(profile)).into_response())
}

/// Correct: requires `If-Match` and writes only if the stored version still matches.
pub async fn update_profile_checked(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(change): Json<ProfileChange>,
) -> Result<Response, StatusCode> {
    let expected = if_match(&headers).ok_or(StatusCode::PRECONDITION_REQUIRED)?;
    let out = state
        .db
        .get_item()
        .table_name(PROFILES)
        .key("id", AttributeValue::S(id.clone()))
        .consistent_read(true)
        .send()
        .await
        .map_err(internal)?;
    let mut profile: Profile = match out.item {
        Some(item) => serde_dynamo::from_item(item).map_err(internal)?,
        None => Profile {
            id: id.clone(),
            ..Profile::default()
        },
    };
    if let Some(name) = change.display_name {
        profile.display_name = name;
    }
    if let Some(bio) = change.bio {
        profile.bio = bio;
    }
    profile.version = expected + 1;
    let item = serde_dynamo::to_item(&profile).map_err(internal)?;
    let result = state
        .db
        .put_item()
        .table_name(PROFILES)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#v) OR #v = :expected")
        .expression_attribute_names("#v", "version")
        .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(([(header::ETAG, etag(profile.version))], Json(profile)).into_response()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Err(StatusCode::PRECONDITION_FAILED)
        }
        Err(e) => Err(internal(e)),
    }
}
