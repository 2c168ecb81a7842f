//! Sign-up and the user's own profile; the admin lists everyone.

use super::State;
use crate::dto::{CreateUser, PageBody, PageQuery, SignedUp, UpdateUser, UserBody};
use crate::error::ApiError;
use crate::extract::{Bearer, Id, Json, Query};
use actix_web::http::header;
use actix_web::HttpResponse;
use domain::models::UserId;

pub async fn create(state: State, Json(body): Json<CreateUser>) -> Result<HttpResponse, ApiError> {
    let (user, token) = state.shop.sign_up(body.parse()?).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/users/{}", user.id)))
        .json(SignedUp { user: user.into(), token: token.as_str().to_string() }))
}

pub async fn list(state: State, Bearer(creds): Bearer, Query(q): Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let page = q.parse().map_err(ApiError::bad_parameter)?;
    let users = state.shop.users(&creds, page).await?;
    Ok(HttpResponse::Ok().json(PageBody::<UserBody>::from_page(users)))
}

pub async fn get(state: State, Bearer(creds): Bearer, Id(id): Id<UserId>) -> Result<HttpResponse, ApiError> {
    let user = state.shop.user(&creds, id).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(user)))
}

pub async fn update(
    state: State,
    Bearer(creds): Bearer,
    Id(id): Id<UserId>,
    Json(body): Json<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let user = state.shop.update_user(&creds, id, body.parse()?).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(user)))
}

pub async fn delete(state: State, Bearer(creds): Bearer, Id(id): Id<UserId>) -> Result<HttpResponse, ApiError> {
    state.shop.delete_user(&creds, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
