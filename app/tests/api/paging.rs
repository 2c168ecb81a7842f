//! Keyset paging as docs/openapi.yaml says it: `next` leads to the following page and is null on
//! the last page, also when the last page is full (no trip to an empty page).

use crate::helpers::*;

/// Walks every page of `path` (a query without `after`) with the given token; returns the ids of
/// each page and the number of items on each.
async fn walk(app: &TestApp, path: &str, token: Option<&str>) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(a) => format!("{path}&after={a}"),
            None => path.to_string(),
        };
        let mut call = app.get(&url);
        if let Some(t) = token {
            call = call.bearer(t);
        }
        let page = call.send().await.assert_status(200).clone();
        let ids: Vec<String> = page["items"].as_array().unwrap().iter().map(|i| id_of(i).to_string()).collect();
        assert!(!ids.is_empty(), "{url}: a `next` led to an empty page");
        let next = page["next"].as_str().map(str::to_string);
        if let Some(n) = &next {
            assert_eq!(Some(n), ids.last(), "{url}: next is the last id of the page");
        }
        pages.push(ids);
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
        assert!(pages.len() < 20, "{path}: paging does not end");
    }
    pages
}

fn sizes(pages: &[Vec<String>]) -> Vec<usize> {
    pages.iter().map(Vec::len).collect()
}

#[tokio::test]
async fn a_full_last_page_has_no_next_on_every_list() {
    let app = spawn_app().await;
    for name in ["Hammer", "Saw", "Drill", "Plane"] {
        app.product(name, "tools", 1000).await;
    }
    for name in ["Pan", "Pot"] {
        app.product(name, "kitchen", 500).await;
    }
    // Products: all of them, and one category; page sizes that divide the count and that do not.
    assert_eq!(sizes(&walk(&app, "/products?limit=6", None).await), [6]);
    assert_eq!(sizes(&walk(&app, "/products?limit=3", None).await), [3, 3]);
    assert_eq!(sizes(&walk(&app, "/products?limit=4", None).await), [4, 2]);
    assert_eq!(sizes(&walk(&app, "/products?limit=7", None).await), [6]);
    assert_eq!(sizes(&walk(&app, "/products?category=tools&limit=4", None).await), [4]);
    assert_eq!(sizes(&walk(&app, "/products?category=tools&limit=2", None).await), [2, 2]);
    assert_eq!(sizes(&walk(&app, "/products?category=tools&limit=1", None).await), [1, 1, 1, 1]);
    assert_eq!(sizes(&walk(&app, "/products?category=kitchen&limit=3", None).await), [2]);
    let all: Vec<String> = walk(&app, "/products?limit=1", None).await.concat();
    assert_eq!(all.len(), 6, "every product once");

    // Users (admin).
    let (user, token) = app.user().await;
    app.user().await;
    assert_eq!(sizes(&walk(&app, "/users?limit=2", Some(ADMIN_TOKEN)).await), [2]);
    assert_eq!(sizes(&walk(&app, "/users?limit=1", Some(ADMIN_TOKEN)).await), [1, 1]);

    // Orders, newest first.
    let product = app.product("Pen", "office", 100).await;
    for key in ["p1", "p2"] {
        app.add_to_cart(&user, &token, id_of(&product), 1).await;
        app.checkout(&user, &token, key).await.assert_status(201);
    }
    let orders = format!("/users/{user}/orders?limit=2");
    assert_eq!(sizes(&walk(&app, &orders, Some(&token)).await), [2]);
    let orders = format!("/users/{user}/orders?limit=1");
    assert_eq!(sizes(&walk(&app, &orders, Some(&token)).await), [1, 1]);
}
