//! Prefetching: a cold `fm lock` against a slow `fm registry serve` asks for
//! documents concurrently, so it costs about as many round trips as the
//! graph is deep (4), not as many as it has packages (60).
//!
//! The client reaches the server through a [`Proxy`] of the test's own,
//! which holds every request for 50 ms and records the most requests in
//! flight at once; the assertions are on that count and on how often each
//! document was fetched, never on wall time.

use std::time::Duration;

use crate::common::*;
use crate::proxy::Proxy;

const LEVELS: usize = 4;
const WIDTH: usize = 15;

fn pkg(level: usize, i: usize) -> String {
    format!("p{level}-{i}")
}

#[test]
fn cold_lock_fetches_each_level_of_the_graph_concurrently() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("st");
    for level in 0..LEVELS {
        for i in 0..WIDTH {
            let deps: Vec<(String, &str)> = if level + 1 < LEVELS {
                (0..3).map(|d| (pkg(level + 1, (i + d) % WIDTH), "^1")).collect()
            } else {
                Vec::new()
            };
            let deps: Vec<(&str, &str)> = deps.iter().map(|(n, r)| (n.as_str(), *r)).collect();
            reg.publish(&pkg(level, i), "1.0.0", &deps);
        }
    }
    let server = ctx.serve(&reg.root, &[], &[]);
    let proxy = Proxy::start(&server.url, Duration::from_millis(50));
    let mut manifest = String::from("[project]\nname = \"app\"\n\n[dependencies]\n");
    for i in 0..WIDTH {
        manifest.push_str(&format!("{} = \"^1\"\n", pkg(0, i)));
    }
    manifest.push_str(&format!("\n[[registries]]\nname = \"srv\"\nurl = \"{}\"\n", proxy.url));
    ctx.write_manifest(&manifest);

    let out = ctx.run(&["lock"]);
    assert_code(&out, 0);
    let lock = ctx.read("fm.lock");
    assert_eq!(lock.matches("[[package]]").count(), LEVELS * WIDTH, "{lock}");

    let stats = proxy.stats();
    let log = server.log_when(|l| l.matches("GET /api/v1/registry/packages/p").count() >= LEVELS * WIDTH);
    for level in 0..LEVELS {
        for i in 0..WIDTH {
            let line = format!("GET /api/v1/registry/packages/{} 200", pkg(level, i));
            assert_eq!(log.matches(&line).count(), 1, "{} fetched once\n{log}", pkg(level, i));
        }
    }
    // A sequential resolver never has more than one request in flight; one
    // that prefetches has a whole level (15 documents) in flight at once.
    let max = stats.max_in_flight;
    println!(
        "FIGURES prefetch: {} packages, 4 levels, 50 ms a request: {stats}",
        LEVELS * WIDTH
    );
    assert!(
        max >= 10,
        "at most {max} requests were in flight: no prefetching ({stats})"
    );

    // A second cold resolution revalidates the cached documents: 304s.
    std::fs::remove_file(ctx.project.join("fm.lock")).expect("rm lock");
    let out = ctx.run(&["lock"]);
    assert_code(&out, 0);
    let log = server.log_when(|l| l.contains("GET /api/v1/registry/packages/p0-0 304"));
    assert!(log.contains("GET /api/v1/registry/packages/p0-0 304"), "{log}");
}
