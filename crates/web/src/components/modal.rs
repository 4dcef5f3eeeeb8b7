use leptos::prelude::*;

/// A modal `<dialog>`: opened with `showModal()` (focus moves inside, Escape closes, the page
/// behind is inert), its content rendered only while open.
#[component]
pub fn Modal(
    open: RwSignal<bool>,
    #[prop(into)] title: String,
    testid: &'static str,
    children: ChildrenFn,
) -> impl IntoView {
    let node: NodeRef<leptos::html::Dialog> = NodeRef::new();
    Effect::new(move |_| {
        let want = open.get();
        if let Some(dialog) = node.get() {
            if want && !dialog.open() {
                let _ = dialog.show_modal();
            } else if !want && dialog.open() {
                dialog.close();
            }
        }
    });
    let title_id = format!("{testid}-title");
    let labelled_by = title_id.clone();
    view! {
        <dialog
            node_ref=node
            class="modal"
            data-testid=testid
            aria-labelledby=labelled_by
            on:close=move |_| {
                if open.get_untracked() {
                    open.set(false);
                }
            }
        >
            <h2 id=title_id class="modal-title">
                {title}
            </h2>
            {move || open.get().then(|| children())}
        </dialog>
    }
}
