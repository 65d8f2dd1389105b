use picloud_sandbox::*;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = args[1].clone();
    let stack_kb: usize = args[2].parse().unwrap();
    let levels: usize = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(256);
    let depth: usize = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(256);
    let nest: usize = args.get(5).map(|s| s.parse().unwrap()).unwrap_or(depth - 10);
    let sandbox = Arc::new(Sandbox::new());
    let mut limits = Limits::DEFAULT;
    limits.max_call_levels = levels;
    limits.max_expr_depth = depth;
    limits.max_array_size = 1_000_000;
    limits.max_map_size = 1_000_000;
    limits.max_operations = 1_000_000_000;
    limits.timeout_ms = 300_000;
    let src = match scenario.as_str() {
        "recurse" => "fn f(n) { f(n + 1) } f(0)".to_string(),
        "recurse_deep" => {
            // each level evaluates a deeply nested expression before recursing
            let mut e = String::from("n");
            for _ in 0..nest { e = format!("(1 + {e})"); }
            format!("fn f(n) {{ let x = {e}; f(n + 1) }} f(0)")
        }
        "recurse_deep_arg" => {
            let mut e = String::from("f(n + 1)");
            for _ in 0..nest { e = format!("(1 + {e})"); }
            format!("fn f(n) {{ {e} }} f(0)")
        }
        "parse_deep" => {
            let mut e = String::from("1");
            for _ in 0..nest { e = format!("(1 + {e})"); }
            e
        }
        "nest" => format!("let a = []; for i in 0..{levels} {{ a = [a]; }} 1"),
        "nest_map" => format!("let a = #{{}}; for i in 0..{levels} {{ a = #{{a: a}}; }} 1"),
        "nest_print" => format!("let a = []; for i in 0..{levels} {{ a = [a]; }} print(a); 1"),
        "tmpl_parse" | "tmpl_run" | "tmpl_rec" => {
            let t = args[6].clone();
            let mut e = String::from(if scenario == "tmpl_rec" { "f(n + 1)" } else { "n" });
            for _ in 0..nest { e = t.replace("E", &e); }
            match scenario.as_str() {
                "tmpl_parse" => format!("let n = 1; {e}"),
                "tmpl_run" => format!("let n = 1; {e}; 1"),
                _ => format!("fn f(n) {{ {e} }} f(1)"),
            }
        }
        _ => panic!(),
    };
    let t = std::time::Instant::now();
    let h = std::thread::Builder::new().stack_size(stack_kb * 1024).spawn(move || {
        let script = ScriptSource { id: "x".into(), version: 1, name: "x".into(), source: src.into() };
        let input = RunInput { app_id: "a".into(), app_slug: "a".into(), invocation_id: "i".into(), request: None, params: Default::default(), event: serde_json::json!({"kind":"async"}) };
        if scenario == "parse_deep" || scenario == "tmpl_parse" || args.get(7).is_some() {
            let r = sandbox.compile_with_limits(&script.source, &limits);
            format!("{r:?}")
        } else {
            let r = sandbox.run(&script, &NoModules, &limits, input, None);
            format!("{:?}", r.outcome)
        }
    }).unwrap();
    let out = h.join().unwrap();
    println!("OK {} {:?}", &out[..out.len().min(150)], t.elapsed());
}
