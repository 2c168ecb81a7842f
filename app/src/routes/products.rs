//! The catalogue: public reads, admin writes.

use super::State;
use crate::dto::{CreateProduct, PageBody, ProductBody, ProductsQuery, UpdateProduct};
use crate::error::ApiError;
use crate::extract::{Bearer, Id, Json, Query};
use actix_web::http::header;
use actix_web::HttpResponse;
use domain::models::ProductId;

pub async fn create(
    state: State,
    Bearer(creds): Bearer,
    Json(body): Json<CreateProduct>,
) -> Result<HttpResponse, ApiError> {
    let product = state.shop.create_product(&creds, body.parse()?).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/products/{}", product.id)))
        .json(ProductBody::from(product)))
}

pub async fn list(state: State, Query(q): Query<ProductsQuery>) -> Result<HttpResponse, ApiError> {
    let (category, page) = q.parse().map_err(ApiError::bad_parameter)?;
    let products = state.shop.products(category.as_ref(), page).await?;
    Ok(HttpResponse::Ok().json(PageBody::<ProductBody>::from_page(products)))
}

pub async fn get(state: State, Id(id): Id<ProductId>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(ProductBody::from(state.shop.product(id).await?)))
}

pub async fn update(
    state: State,
    Bearer(creds): Bearer,
    Id(id): Id<ProductId>,
    Json(body): Json<UpdateProduct>,
) -> Result<HttpResponse, ApiError> {
    let product = state.shop.update_product(&creds, id, body.parse()?).await?;
    Ok(HttpResponse::Ok().json(ProductBody::from(product)))
}

pub async fn delete(state: State, Bearer(creds): Bearer, Id(id): Id<ProductId>) -> Result<HttpResponse, ApiError> {
    state.shop.delete_product(&creds, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
