//! The browser entry point: hydrates the server-rendered Hangar app.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // `hydrate_lazy`: a page whose code is a lazily loaded chunk hydrates once that chunk is in.
    leptos::mount::hydrate_lazy(app::App);
}
