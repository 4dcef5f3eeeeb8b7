fn main() {
    console_error_panic_hook::set_once();
    keysync_web::sync::console::install();
    leptos::mount::mount_to_body(keysync_web::App);
}
