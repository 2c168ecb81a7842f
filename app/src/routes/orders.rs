//! Checkout (idempotent per `Idempotency-Key`) and the user's orders.

use super::State;
use crate::dto::{self, OrderBody, PageBody, PageQuery, UpdateOrder};
use crate::error::ApiError;
use crate::extract::{Bearer, Id, IdempotencyKeyHeader, Json, JsonOrEmpty, Query};
use actix_web::http::header;
use actix_web::HttpResponse;
use domain::models::{OrderId, UserId};
use domain::Checkout;

/// 201 with the new order, or 200 with the order an earlier request with this key made.
pub async fn checkout(
    state: State,
    Bearer(creds): Bearer,
    Id(user): Id<UserId>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    _: JsonOrEmpty<dto::Checkout>,
) -> Result<HttpResponse, ApiError> {
    match state.shop.checkout(&creds, user, key).await? {
        Checkout::Created(order) => Ok(HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/users/{user}/orders/{}", order.id)))
            .json(OrderBody::from(order))),
        Checkout::Replayed(order) => Ok(HttpResponse::Ok().json(OrderBody::from(order))),
    }
}

pub async fn list(
    state: State,
    Bearer(creds): Bearer,
    Id(user): Id<UserId>,
    Query(q): Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = q.parse().map_err(ApiError::bad_parameter)?;
    let orders = state.shop.orders(&creds, user, page).await?;
    Ok(HttpResponse::Ok().json(PageBody::<OrderBody>::from_page(orders)))
}

pub async fn get(
    state: State,
    Bearer(creds): Bearer,
    Id(user): Id<UserId>,
    Id(order): Id<OrderId>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(OrderBody::from(state.shop.order(&creds, user, order).await?)))
}

pub async fn update(
    state: State,
    Bearer(creds): Bearer,
    Id(user): Id<UserId>,
    Id(order): Id<OrderId>,
    Json(body): Json<UpdateOrder>,
) -> Result<HttpResponse, ApiError> {
    let order = state.shop.change_order_status(&creds, user, order, body.parse()?).await?;
    Ok(HttpResponse::Ok().json(OrderBody::from(order)))
}
