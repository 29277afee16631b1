//! The browser entry point: hydrates the server-rendered Hangar app.

use leptos::prelude::*;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // What `leptos::mount::hydrate_lazy` does (a page whose code is a lazily loaded wasm part
    // hydrates once that part is in), then the mark people and tests wait for: set when the
    // whole page has been taken over, not when the frame around a still-loading page has.
    // `hydrate_from_async` sets up Leptos' executor; this task only has to be driven.
    wasm_bindgen_futures::spawn_local(async {
        let Some(body) = document().body() else {
            return;
        };
        let app = leptos::mount::hydrate_from_async(body, app::App).await;
        app.forget();
        app::page_hydrated();
    });
}
