//! Queries through the `Aurora` handle: every operator family, typed errors
//! for malformed queries, the planner's choices as `explain` reports them,
//! keyset paging under concurrent inserts, aggregation, and bulk
//! update/delete.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Access, Aggregate, Aurora, Error, FieldDefinition, FieldType, Order, Value};

async fn people() -> Aurora {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection(
        "people",
        [
            ("name", FieldDefinition::new(FieldType::String).indexed()),
            ("age", FieldDefinition::new(FieldType::Int).indexed()),
            ("score", FieldDefinition::new(FieldType::Float).nullable()),
            ("city", FieldDefinition::new(FieldType::String).indexed().nullable()),
            ("tags", FieldDefinition::new(FieldType::Array).indexed().nullable()),
            ("address", FieldDefinition::new(FieldType::Object).nullable()),
        ],
    )
    .await
    .unwrap();
    let rows = [
        ("Ada", 36, Some(9.5), Some("London"), vec!["math", "code"]),
        ("Alan", 41, Some(8.0), Some("Wilmslow"), vec!["math", "crypto"]),
        ("Grace", 85, None, None, vec!["code"]),
        ("Émile", 25, Some(7.25), Some("Zürich"), vec![]),
        ("Åsa", 30, Some(9.5), Some("Malmö"), vec!["design"]),
    ];
    for (name, age, score, city, tags) in rows {
        let mut d = doc! { "name": name, "age": age, "tags": tags, "address": { "zip": age * 10 } };
        if let Some(s) = score {
            d.set("score", s);
        }
        if let Some(c) = city {
            d.set("city", c);
        }
        db.insert_into("people", d).await.unwrap();
    }
    db
}

async fn names(q: aurora::QueryBuilder) -> Vec<String> {
    q.collect().await.unwrap().iter().map(|d| d.get("name").and_then(Value::as_str).unwrap().to_string()).collect()
}

#[tokio::test]
async fn operators() {
    let db = people().await;
    let q = || db.query("people").order_by("age", Order::Asc);
    assert_eq!(names(q().filter(|f| f.eq("age", 36.0))).await, ["Ada"], "int field, float value");
    assert_eq!(names(q().filter(|f| f.ne("city", "London"))).await, ["Émile", "Åsa", "Alan", "Grace"]);
    assert_eq!(names(q().filter(|f| f.gt("score", 8))).await, ["Åsa", "Ada"], "float field, int value");
    assert_eq!(names(q().filter(|f| f.between("age", 30, 41))).await, ["Åsa", "Ada", "Alan"]);
    assert_eq!(names(q().filter(|f| f.in_values("name", ["Grace", "Ada", "Nobody"]))).await, ["Ada", "Grace"]);
    assert_eq!(names(q().filter(|f| f.contains("city", "ö"))).await, ["Åsa"], "unicode substring");
    assert_eq!(names(q().filter(|f| f.starts_with("name", "Å"))).await, ["Åsa"]);
    assert_eq!(names(q().filter(|f| f.ends_with("city", "low"))).await, ["Alan"]);
    assert_eq!(names(q().filter(|f| f.in_array("tags", "math"))).await, ["Ada", "Alan"]);
    assert_eq!(names(q().filter(|f| f.is_null("score"))).await, ["Grace"], "missing counts as null");
    assert_eq!(names(q().filter(|f| f.has_field("city") & !f.eq("age", 25))).await, ["Åsa", "Ada", "Alan"]);
    assert_eq!(names(q().filter(|f| f.lt("address.zip", 300))).await, ["Émile"], "nested path");
    assert_eq!(names(q().filter(|f| f.eq("age", 25) | f.eq("age", 85))).await, ["Émile", "Grace"]);
    assert_eq!(names(q().filter(|f| f.lte("age", 30)).select(["name"])).await, ["Émile", "Åsa"]);
    let projected = q().filter(|f| f.eq("name", "Ada")).select(["address.zip"]).first().await.unwrap().unwrap();
    assert_eq!(projected.fields.len(), 1);
    assert_eq!(projected.get_path("address.zip"), Some(&Value::Int(360)));
    assert_eq!(db.query("people").count().await.unwrap(), 5);
    assert!(!db.query("people").filter(|f| f.gt("age", 100)).exists().await.unwrap());
}

#[tokio::test]
async fn malformed_queries_are_typed_errors() {
    let db = people().await;
    let strict = aurora::index::Schema::new().field("age", FieldDefinition::new(FieldType::Int)).strict();
    db.new_collection_with_schema("strict", strict).await.unwrap();
    let err = db.query("strict").filter(|f| f.eq("nope", 1)).collect().await.unwrap_err();
    assert!(matches!(err, Error::Query(aurora::query_engine::QueryError::UnknownField { .. })), "{err}");
    // A collection that accepts undeclared fields can be queried on them.
    assert_eq!(db.query("people").filter(|f| f.eq("nope", 1)).count().await.unwrap(), 0);
    let err = db.query("people").filter(|f| f.gt("age", "old")).collect().await.unwrap_err();
    assert_eq!(err.to_string(), "collection `people`: field `age` is int, the filter gives string");
    let err = db.query("people").filter(|f| f.contains("age", "3")).count().await.unwrap_err();
    assert!(matches!(err, Error::Query(_)), "{err}");
    let err = db.query("strict").order_by("height", Order::Asc).collect().await.unwrap_err();
    assert!(err.to_string().contains("height"), "{err}");
    let err = db.query("nobody").collect().await.unwrap_err();
    assert!(matches!(err, Error::UnknownCollection(_)), "{err}");
}

#[tokio::test]
async fn explain_shows_the_plan() {
    let db = people().await;
    let plan = db.query("people").filter(|f| f.eq("name", "Ada")).explain().await.unwrap();
    assert!(matches!(plan.access, Access::Index { ref field, .. } if field == "name"), "{plan:?}");
    assert_eq!((plan.estimated_rows, plan.examined_rows, plan.returned_rows), (1, 1, 1));
    let plan = db.query("people").filter(|f| f.gt("score", 1)).explain().await.unwrap();
    assert_eq!(plan.access, Access::FullScan, "score is not indexed");
    assert_eq!(plan.examined_rows, 5);
    let plan = db.query("people").filter(|f| f.gte("age", 30) & f.in_array("tags", "math")).explain().await.unwrap();
    assert!(matches!(plan.access, Access::Intersection(..)), "{plan:?}");
    assert_eq!(plan.returned_rows, 2);
    let plan = db.query("people").order_by("age", Order::Desc).limit(2).explain().await.unwrap();
    assert!(matches!(plan.access, Access::IndexOrder { descending: true, .. }), "{plan:?}");
    assert_eq!(plan.examined_rows, 2, "top-k stops early");
}

#[tokio::test]
async fn keyset_pages_are_stable_under_concurrent_inserts() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("items", [("n", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
    for n in (0..50).map(|i| i * 2) {
        db.insert_into("items", doc! { "n": n }).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let mut q = db.query("items").order_by("n", Order::Asc).limit(7);
        if let Some(c) = cursor.take() {
            q = q.after(c);
        }
        let page = q.page().await.unwrap();
        seen.extend(page.items.iter().map(|d| d.get("n").and_then(Value::as_i64).unwrap()));
        // Inserts before the cursor must not shift what comes next.
        db.insert_into("items", doc! { "n": -1 - seen.len() as i64 }).await.unwrap();
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, (0..50).map(|i| i * 2).collect::<Vec<_>>(), "no item skipped or repeated");
}

/// Issue 16, item 4: a projection that leaves out the sort field must not
/// break the cursor (7 documents; ties and a missing sort value included).
#[tokio::test]
async fn keyset_pages_survive_a_projection_without_the_sort_field() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection(
        "p",
        [
            ("name", FieldDefinition::new(FieldType::String)),
            ("age", FieldDefinition::new(FieldType::Int).indexed()),
            ("rank", FieldDefinition::new(FieldType::Int).nullable()),
        ],
    )
    .await
    .unwrap();
    let rows = [
        ("a", 30, Some(1)),
        ("b", 20, Some(5)),
        ("c", 30, Some(5)),
        ("d", 50, None),
        ("e", 10, Some(2)),
        ("f", 40, Some(9)),
        ("g", 20, None),
    ];
    for (name, age, rank) in rows {
        let mut d = doc! { "name": name, "age": age };
        if let Some(r) = rank {
            d.set("rank", r);
        }
        db.insert_into("p", d).await.unwrap();
    }
    for (field, order) in [("age", Order::Asc), ("age", Order::Desc), ("rank", Order::Desc), ("rank", Order::Asc)] {
        let mut seen = Vec::new();
        let mut cursor = None;
        for _ in 0..10 {
            let mut q = db.query("p").order_by(field, order).select(["name"]).limit(3);
            if let Some(c) = cursor.take() {
                q = q.after(c);
            }
            let page = q.page().await.unwrap();
            assert!(page.items.iter().all(|d| d.fields.len() == 1), "projected to the name");
            seen.extend(page.items.iter().map(|d| d.get("name").and_then(Value::as_str).unwrap().to_string()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let all = db.query("p").order_by(field, order).collect().await.unwrap();
        let want: Vec<String> =
            all.iter().map(|d| d.get("name").and_then(Value::as_str).unwrap().to_string()).collect();
        assert_eq!(seen, want, "pages by {field} {order:?}: every row once, in order");
    }
}

#[tokio::test]
async fn aggregation_and_bulk_changes() {
    let db = people().await;
    let all = db
        .query("people")
        .aggregate(
            None,
            &[
                Aggregate::Count,
                Aggregate::Sum("age".into()),
                Aggregate::Avg("score".into()),
                Aggregate::Min("name".into()),
                Aggregate::Max("age".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0].values,
        vec![Value::Int(5), Value::Int(217), Value::Float(8.5625), Value::from("Ada"), Value::Int(85)]
    );
    let by_score = db.query("people").aggregate(Some("score"), &[Aggregate::Count]).await.unwrap();
    let counts: Vec<(Value, Value)> = by_score.into_iter().map(|g| (g.key, g.values[0].clone())).collect();
    assert_eq!(
        counts,
        vec![
            (Value::Null, Value::Int(1)),
            (Value::Float(7.25), Value::Int(1)),
            (Value::Float(8.0), Value::Int(1)),
            (Value::Float(9.5), Value::Int(2))
        ]
    );

    let n =
        db.query("people").filter(|f| f.in_array("tags", "math")).update(doc! { "mathematician": true }).await.unwrap();
    assert_eq!(n, 2);
    assert_eq!(db.query("people").filter(|f| f.eq("mathematician", true)).count().await.unwrap(), 2);
    let gone = db.query("people").filter(|f| f.lt("age", 35)).delete().await.unwrap();
    assert_eq!(gone, 2);
    assert_eq!(db.query("people").count().await.unwrap(), 3);

    #[derive(serde::Deserialize, Debug)]
    struct Person {
        name: String,
        age: i64,
    }
    let typed: Vec<Person> = db.query("people").order_by("age", Order::Asc).collect_as().await.unwrap();
    assert_eq!(
        typed.iter().map(|p| (p.name.as_str(), p.age)).collect::<Vec<_>>(),
        [("Ada", 36), ("Alan", 41), ("Grace", 85)]
    );
}

#[tokio::test]
async fn computed_fields_chain_filter_order_select_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    db.new_collection("orders", [("subtotal", FieldDefinition::new(FieldType::Int))]).await.unwrap();
    for (who, sub, tax, ship) in [("ada", 100, 20, 5), ("bob", 10, 2, 5), ("cy", 50, 10, 0)] {
        db.insert_into("orders", doc! { "first": who, "last": "x", "subtotal": sub, "tax": tax, "shipping": ship })
            .await
            .unwrap();
    }
    let total = aurora::Expression::Sum { fields: vec!["subtotal".into(), "tax".into(), "shipping".into()] };
    db.register_computed("orders", "total", total).await.unwrap();
    db.register_computed(
        "orders",
        "label",
        aurora::Expression::Concat { fields: vec!["first".into(), "total".into()], separator: ":".into() },
    )
    .await
    .unwrap();
    db.register_computed(
        "orders",
        "avg",
        aurora::Expression::Average { fields: vec!["tax".into(), "shipping".into()] },
    )
    .await
    .unwrap();
    // A cycle is refused; a stored field's name is refused.
    let err = db
        .register_computed("orders", "total", aurora::Expression::Sum { fields: vec!["label".into()] })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
    let err = db.register_computed("orders", "subtotal", aurora::Expression::Sum { fields: vec![] }).await.unwrap_err();
    assert!(err.to_string().contains("stored field"), "{err}");

    let rows = db
        .query("orders")
        .filter(|f| f.gt("total", 60))
        .order_by("total", Order::Desc)
        .select(["label", "avg"])
        .collect()
        .await
        .unwrap();
    let labels: Vec<_> = rows.iter().map(|d| d.get("label").and_then(Value::as_str).unwrap().to_string()).collect();
    assert_eq!(labels, ["ada:125"], "filter and order on a computed field, chained label");
    assert_eq!(rows[0].get("avg"), Some(&Value::Float(12.5)));
    db.close().await.unwrap();

    let db = Aurora::open(dir.path()).await.unwrap();
    let n = db.query("orders").filter(|f| f.lt("total", 20)).count().await.unwrap();
    assert_eq!(n, 1, "registrations survive reopen");
    assert!(db.unregister_computed("orders", "avg").await.unwrap());
    let first = db.query("orders").first().await.unwrap().unwrap();
    assert!(first.get("avg").is_none() && first.get("total").is_some());
}

#[tokio::test]
async fn the_study_custom_expression_works_verbatim() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("users", [("age", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
    for age in [12, 17, 18, 40] {
        db.insert_into("users", doc! { "age": age }).await.unwrap();
    }
    let custom = aurora::Expression::Custom {
        code: "if (age < 18) return 'minor'; return 'adult';".into(),
        dependencies: vec!["age".into()],
    };
    db.register_computed("users", "category", custom).await.unwrap();
    let minors =
        db.query("users").filter(|f| f.eq("category", "minor")).order_by("age", Order::Asc).collect().await.unwrap();
    assert_eq!(
        minors.iter().map(|d| d.get("age").cloned().unwrap()).collect::<Vec<_>>(),
        [Value::Int(12), Value::Int(17)]
    );
    // A script error is a typed error at registration or at query time.
    let err = db
        .register_computed(
            "users",
            "broken",
            aurora::Expression::Custom { code: "return (".into(), dependencies: vec![] },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid computed field"), "{err}");
    db.register_computed(
        "users",
        "thrower",
        aurora::Expression::Custom { code: "throw new Error('no');".into(), dependencies: vec![] },
    )
    .await
    .unwrap();
    let err = db.query("users").collect().await.unwrap_err();
    assert!(err.to_string().contains("computed field `thrower` failed"), "{err}");
}

#[tokio::test]
async fn streams_match_collect() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("log", [("level", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
    let docs: Vec<_> = (0..300).map(|i| doc! { "level": i % 5, "msg": format!("m{i}") }).collect();
    db.insert_many("log", docs).await.unwrap();
    for q in [db.query("log").filter(|f| f.eq("level", 3)), db.query("log").filter(|f| f.contains("msg", "9"))] {
        let streamed: Vec<_> = q.clone().stream().unwrap().map(|d| d.unwrap().id).collect();
        let collected: Vec<_> = q.collect().await.unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(streamed, collected);
        assert!(!streamed.is_empty());
    }
    let first_five: Vec<_> = db.query("log").offset(2).limit(5).stream().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(first_five.len(), 5);
    let err = db.query("log").filter(|f| f.gt("level", "high")).stream().err().expect("typed error up front");
    assert!(matches!(err, Error::Query(_)), "{err}");
}
