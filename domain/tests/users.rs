mod common;
use common::*;
use domain::models::*;
use domain::DomainError;

#[tokio::test]
async fn sign_up_returns_a_token_that_opens_only_that_user() {
    let shop = shop();
    let (ann, ann_token) = sign_up(&shop, "ann@example.com").await;
    let (bob, _) = sign_up(&shop, "bob@example.com").await;
    assert_eq!(shop.user(&bearer(&ann_token), ann.id).await.unwrap(), ann);
    assert!(matches!(shop.user(&bearer(&ann_token), bob.id).await, Err(DomainError::Forbidden)));
    assert!(matches!(shop.user(&none(), ann.id).await, Err(DomainError::Unauthenticated)));
    assert_eq!(shop.user(&admin(), bob.id).await.unwrap(), bob);
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_naming_the_field() {
    let shop = shop();
    sign_up(&shop, "ann@example.com").await;
    let again = NewUser { email: Email::parse("ANN@example.com").unwrap(), name: UserName::parse("Ann 2").unwrap() };
    match shop.sign_up(again).await {
        Err(DomainError::Conflict { field, .. }) => assert_eq!(field.as_deref(), Some("email")),
        other => panic!("expected conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn update_keeps_fields_not_in_the_patch() {
    let shop = shop();
    let (ann, token) = sign_up(&shop, "ann@example.com").await;
    let patch = UserPatch { name: Some(UserName::parse("Annie").unwrap()), email: None };
    let updated = shop.update_user(&bearer(&token), ann.id, patch).await.unwrap();
    assert_eq!(updated.name.as_str(), "Annie");
    assert_eq!(updated.email, ann.email);
    assert_eq!(shop.user(&bearer(&token), ann.id).await.unwrap(), updated);
}

#[tokio::test]
async fn listing_users_is_for_the_admin_only() {
    let shop = shop();
    let (_, token) = sign_up(&shop, "ann@example.com").await;
    assert!(matches!(shop.users(&bearer(&token), PageRequest::first(10)).await, Err(DomainError::Forbidden)));
    assert_eq!(shop.users(&admin(), PageRequest::first(10)).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn a_user_token_does_not_reveal_which_ids_exist() {
    let shop = shop();
    let (_, token) = sign_up(&shop, "ann@example.com").await;
    let unknown = UserId::from_uuid(uuid::Uuid::now_v7());
    assert!(matches!(shop.user(&bearer(&token), unknown).await, Err(DomainError::Forbidden)));
    assert!(matches!(shop.user(&admin(), unknown).await, Err(DomainError::NotFound { .. })));
}

#[tokio::test]
async fn a_deleted_users_orders_stay_readable_by_the_admin_only() {
    let shop = shop();
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    let p = product(&shop, "Hammer", 1250).await;
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(1)).await.unwrap();
    let order = shop.checkout(&bearer(&t), ann.id, key("k1")).await.unwrap().order().clone();
    shop.delete_user(&bearer(&t), ann.id).await.unwrap();

    let page = shop.orders(&admin(), ann.id, PageRequest::first(10)).await.unwrap();
    assert_eq!((page.items, page.next), (vec![order.clone()], None));
    assert_eq!(shop.order(&admin(), ann.id, order.id).await.unwrap(), order);
    assert!(matches!(shop.orders(&bearer(&t), ann.id, PageRequest::first(10)).await, Err(DomainError::Forbidden)));
    let cancel = shop.change_order_status(&admin(), ann.id, order.id, OrderStatus::Cancelled).await;
    assert!(matches!(cancel, Err(DomainError::NotFound { entity: "user" })), "{cancel:?}");

    // An id that never had a user nor an order stays unknown.
    let never = UserId::from_uuid(uuid::Uuid::now_v7());
    let listed = shop.orders(&admin(), never, PageRequest::first(10)).await;
    assert!(matches!(listed, Err(DomainError::NotFound { entity: "user" })), "{listed:?}");
    let after = PageRequest { limit: 10, after: Some(order.id.as_uuid()) };
    assert!(matches!(shop.orders(&admin(), never, after).await, Err(DomainError::NotFound { .. })));
    assert!(matches!(shop.order(&admin(), never, order.id).await, Err(DomainError::NotFound { .. })));
}
