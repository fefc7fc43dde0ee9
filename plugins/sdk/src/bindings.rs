//! Generated bindings for the `abstractgateway:plugin` worlds.
//!
//! Both worlds are generated here with a public export macro so that a plugin crate exports them
//! without depending on wit-bindgen itself; paths are written from the crate root
//! (`::abstractgateway_plugin_sdk`) because the export macros expand inside the plugin crate.
#![allow(missing_docs, clippy::all, unsafe_op_in_unsafe_fn)]

/// Bindings of the `node-plugin` world: every host import and the `node` export.
pub mod node {
    wit_bindgen::generate!({
        world: "node-plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_node_plugin",
        default_bindings_module: "::abstractgateway_plugin_sdk::bindings::node",
        runtime_path: "::abstractgateway_plugin_sdk::__rt",
        type_section_suffix: "-agsdk",
        additional_derives: [PartialEq],
    });
}

/// Bindings of the `tool-plugin` world; its imports reuse the `node` module's types.
pub mod tool {
    wit_bindgen::generate!({
        world: "tool-plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_tool_plugin",
        default_bindings_module: "::abstractgateway_plugin_sdk::bindings::tool",
        runtime_path: "::abstractgateway_plugin_sdk::__rt",
        type_section_suffix: "-agsdk",
        additional_derives: [PartialEq],
        with: {
            "abstractgateway:plugin/types@0.2.0": ::abstractgateway_plugin_sdk::bindings::node::abstractgateway::plugin::types,
            "abstractgateway:plugin/tools@0.2.0": ::abstractgateway_plugin_sdk::bindings::node::abstractgateway::plugin::tools,
            "abstractgateway:plugin/http@0.2.0": ::abstractgateway_plugin_sdk::bindings::node::abstractgateway::plugin::http,
            "abstractgateway:plugin/kv@0.2.0": ::abstractgateway_plugin_sdk::bindings::node::abstractgateway::plugin::kv,
            "abstractgateway:plugin/log@0.2.0": ::abstractgateway_plugin_sdk::bindings::node::abstractgateway::plugin::log,
            "abstractgateway:plugin/artifacts@0.2.0": ::abstractgateway_plugin_sdk::bindings::node::abstractgateway::plugin::artifacts,
            "abstractgateway:plugin/durability@0.2.0": ::abstractgateway_plugin_sdk::bindings::node::abstractgateway::plugin::durability,
        },
    });
}
