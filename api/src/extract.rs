//! Axum's extractors, with their rejections turned into the API's JSON errors.

use crate::error::ApiError;
use axum::{
    extract::FromRequest,
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// A JSON body in and out. Malformed JSON is 400, a wrong shape 422, too large 413.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);
