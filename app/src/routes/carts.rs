//! A user's cart.

use super::State;
use crate::dto::{AddCartItem, CartBody, SetCartItem};
use crate::error::ApiError;
use crate::extract::{Bearer, Id, Json};
use actix_web::HttpResponse;
use domain::models::{ProductId, UserId};

pub async fn get(state: State, Bearer(creds): Bearer, Id(user): Id<UserId>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(CartBody::from(state.shop.cart(&creds, user).await?)))
}

pub async fn add(
    state: State,
    Bearer(creds): Bearer,
    Id(user): Id<UserId>,
    Json(body): Json<AddCartItem>,
) -> Result<HttpResponse, ApiError> {
    let (product, quantity) = body.parse()?;
    let cart = state.shop.add_to_cart(&creds, user, product, quantity).await?;
    Ok(HttpResponse::Ok().json(CartBody::from(cart)))
}

pub async fn set(
    state: State,
    Bearer(creds): Bearer,
    Id(user): Id<UserId>,
    Id(product): Id<ProductId>,
    Json(body): Json<SetCartItem>,
) -> Result<HttpResponse, ApiError> {
    let cart = state.shop.set_cart_quantity(&creds, user, product, body.parse()?).await?;
    Ok(HttpResponse::Ok().json(CartBody::from(cart)))
}

pub async fn remove(
    state: State,
    Bearer(creds): Bearer,
    Id(user): Id<UserId>,
    Id(product): Id<ProductId>,
) -> Result<HttpResponse, ApiError> {
    let cart = state.shop.remove_from_cart(&creds, user, product).await?;
    Ok(HttpResponse::Ok().json(CartBody::from(cart)))
}

pub async fn clear(state: State, Bearer(creds): Bearer, Id(user): Id<UserId>) -> Result<HttpResponse, ApiError> {
    state.shop.clear_cart(&creds, user).await?;
    Ok(HttpResponse::NoContent().finish())
}
