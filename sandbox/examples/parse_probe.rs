fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args[1].parse().unwrap();
    let t = args[2].clone();
    let opt = args[3].as_str();
    let mut e = String::from("n");
    for _ in 0..n { e = t.replace("E", &e); }
    let src = format!("let n = 1; {e}");
    let mut engine = rhai::Engine::new_raw();
    engine.set_max_expr_depths(256, 256);
    engine.set_optimization_level(match opt { "none" => rhai::OptimizationLevel::None, "full" => rhai::OptimizationLevel::Full, _ => rhai::OptimizationLevel::Simple });
    let t0 = std::time::Instant::now();
    let r = engine.compile(&src).map(|_| ());
    println!("{r:?} {:?}", t0.elapsed());
}
