//! JSON request bodies in two steps, so that the error says which kind of mistake was made:
//! text that is not JSON at all (400 `malformed_json`) or JSON of the wrong shape or types
//! (422 `invalid_field`). serde_json alone reports some type mistakes (a number where an enum
//! belongs) as syntax errors.

use super::error::ApiError;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Content type, size limit and syntax are checked by actix's extractor (see JsonConfig).
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = value.await?.into_inner();
            serde_json::from_value(value)
                .map(Body)
                .map_err(|e| ApiError::invalid(format!("the body does not fit: {e}")).into())
        })
    }
}
