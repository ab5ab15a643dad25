//! `#[tool]`, `#[resource]` and `#[prompt]`: turn typed functions into plugin
//! catalogue entries. Each leaves the function as written and adds, beside it, a
//! hidden module of the same name holding `__moat_def()`, which `moat_sdk::plugin!`
//! collects. Use them through `moat-sdk`, which re-exports them.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, FnArg, ItemFn, Lit, Meta, ReturnType, Token, Type, parse_macro_input};

/// Options given in the attribute, e.g. `#[tool(read_only, title = "Disk usage")]`.
#[derive(Default)]
struct Options {
    flags: Vec<(String, proc_macro2::Span)>,
    values: Vec<(String, String, proc_macro2::Span)>,
}

impl Options {
    fn parse(attr: TokenStream) -> syn::Result<Self> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse(attr)?;
        let mut opts = Options::default();
        for meta in metas {
            match meta {
                Meta::Path(p) => {
                    let ident = p.require_ident()?;
                    opts.flags.push((ident.to_string(), ident.span()));
                }
                Meta::NameValue(nv) => {
                    let ident = nv.path.require_ident()?;
                    let Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) = &nv.value else {
                        return Err(syn::Error::new_spanned(&nv.value, "expected a string literal"));
                    };
                    opts.values.push((ident.to_string(), s.value(), ident.span()));
                }
                Meta::List(l) => {
                    return Err(syn::Error::new_spanned(l, "unexpected list in attribute"));
                }
            }
        }
        Ok(opts)
    }

    /// Fails on any option not in `flags`/`values`, naming the accepted ones.
    fn check(&self, flags: &[&str], values: &[&str]) -> syn::Result<()> {
        for (f, span) in &self.flags {
            if !flags.contains(&f.as_str()) {
                return Err(syn::Error::new(
                    *span,
                    format!("unknown flag `{f}`; expected one of: {}", flags.join(", ")),
                ));
            }
        }
        for (k, _, span) in &self.values {
            if !values.contains(&k.as_str()) {
                return Err(syn::Error::new(
                    *span,
                    format!("unknown option `{k}`; expected one of: {}", values.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|(f, _)| f == name)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(k, _, _)| k == name).map(|(_, v, _)| v.as_str())
    }
}

/// The doc comment of the function, paragraphs kept, lines joined.
fn doc_comment(item: &ItemFn) -> Option<String> {
    let lines: Vec<String> = item
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        if line.is_empty() {
            if !out.is_empty() && !out.ends_with("\n\n") {
                out.push_str("\n\n");
            }
        } else {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push(' ');
            }
            out.push_str(&line);
        }
    }
    let out = out.trim().to_owned();
    (!out.is_empty()).then_some(out)
}

fn opt_str(v: Option<&str>) -> TokenStream2 {
    match v {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    }
}

/// The types of the function's arguments.
fn arg_types(item: &ItemFn) -> syn::Result<Vec<Type>> {
    item.sig
        .inputs
        .iter()
        .map(|a| match a {
            FnArg::Typed(t) => Ok((*t.ty).clone()),
            FnArg::Receiver(r) => Err(syn::Error::new_spanned(r, "plugin functions take no `self`")),
        })
        .collect()
}

fn return_type(item: &ItemFn) -> Type {
    match &item.sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    }
}

/// The function, untouched, plus `mod <name> { pub fn __moat_def() -> <def_ty> }`.
fn emit(item: &ItemFn, def_ty: TokenStream2, body: TokenStream2) -> TokenStream {
    let vis = &item.vis;
    let ident = &item.sig.ident;
    quote! {
        #item

        #[doc(hidden)]
        #[allow(non_snake_case)]
        #vis mod #ident {
            #[allow(unused_imports)]
            use super::*;

            pub fn __moat_def() -> #def_ty {
                #body
            }
        }
    }
    .into()
}

/// Parses the attribute and the function, then runs `f`; errors become compile errors.
fn expand(attr: TokenStream, item: TokenStream, f: fn(&Options, &ItemFn) -> syn::Result<TokenStream>) -> TokenStream {
    let opts = match Options::parse(attr) {
        Ok(o) => o,
        Err(e) => return e.to_compile_error().into(),
    };
    let item = parse_macro_input!(item as ItemFn);
    f(&opts, &item).unwrap_or_else(|e| e.to_compile_error().into())
}

/// Makes a typed function a tool.
///
/// The function takes one argument whose type implements `Deserialize + JsonSchema`
/// (or none) and returns a value or a `Result` of one: `String`, `Content`,
/// `Vec<Content>`, `()`, or `Json<T>` for structured output with a schema. Its doc
/// comment is the tool's description.
///
/// Options: `name = "..."`, `title = "..."`, and the flags `read_only`,
/// `destructive`, `idempotent`, `open_world` (all off unless given).
#[proc_macro_attribute]
pub fn tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, tool_impl)
}

fn tool_impl(opts: &Options, item: &ItemFn) -> syn::Result<TokenStream> {
    opts.check(&["read_only", "destructive", "idempotent", "open_world"], &["name", "title", "description"])?;
    let ident = &item.sig.ident;
    let name = opts.value("name").map(str::to_owned).unwrap_or_else(|| ident.to_string());
    let title = opt_str(opts.value("title"));
    let Some(description) = opts.value("description").map(str::to_owned).or_else(|| doc_comment(item)) else {
        return Err(syn::Error::new_spanned(
            &item.sig.ident,
            "a tool needs a description: add a doc comment (it is shown to the model)",
        ));
    };
    let (read_only, destructive, idempotent, open_world) =
        (opts.flag("read_only"), opts.flag("destructive"), opts.flag("idempotent"), opts.flag("open_world"));
    if read_only && destructive {
        return Err(syn::Error::new_spanned(ident, "a tool cannot be both `read_only` and `destructive`"));
    }
    let ret = return_type(item);
    let args = arg_types(item)?;
    let (input_schema, call) = match args.as_slice() {
        [] => (
            quote!(::moat_sdk::__private::serde_json::json!({"type": "object", "properties": {}})),
            quote!(super::#ident()),
        ),
        [ty] => (
            quote!(::moat_sdk::__private::schema_of::<#ty>()),
            quote!(super::#ident(::moat_sdk::__private::parse_args::<#ty>(arguments)?)),
        ),
        _ => {
            return Err(syn::Error::new_spanned(
                &item.sig.inputs,
                "a tool takes one argument: a struct deriving Deserialize and JsonSchema",
            ));
        }
    };
    let body = quote! {
        ::moat_sdk::ToolDef {
            name: #name,
            title: #title,
            description: #description,
            annotations: ::moat_sdk::Annotations {
                read_only: #read_only,
                destructive: #destructive,
                idempotent: #idempotent,
                open_world: #open_world,
            },
            input_schema: || #input_schema,
            output_schema: || <#ret as ::moat_sdk::__private::IntoToolResult>::output_schema(),
            handler: |arguments| {
                let _ = arguments;
                ::moat_sdk::__private::IntoToolResult::into_tool_result(#call)
            },
        }
    };
    Ok(emit(item, quote!(::moat_sdk::ToolDef), body))
}

/// Makes a function a resource (`uri = "..."`) or a resource template
/// (`template = "scheme://{var}"`).
///
/// A fixed resource takes no argument; a template takes `&moat_sdk::UriVars`. The
/// function returns `String` (text), `Vec<u8>` (blob) or `Json<T>`, or a `Result` of
/// one. Options: `name`, `title`, `mime_type`, `description` (else the doc comment).
#[proc_macro_attribute]
pub fn resource(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, resource_impl)
}

fn resource_impl(opts: &Options, item: &ItemFn) -> syn::Result<TokenStream> {
    opts.check(&[], &["uri", "template", "name", "title", "mime_type", "description"])?;
    let ident = &item.sig.ident;
    let (uri, is_template) = match (opts.value("uri"), opts.value("template")) {
        (Some(u), None) => (u.to_owned(), false),
        (None, Some(t)) => (t.to_owned(), true),
        _ => {
            return Err(syn::Error::new_spanned(
                ident,
                "a resource needs exactly one of `uri = \"...\"` or `template = \"...\"`",
            ));
        }
    };
    let name = opts.value("name").map(str::to_owned).unwrap_or_else(|| ident.to_string());
    let title = opt_str(opts.value("title"));
    let mime = opt_str(opts.value("mime_type"));
    let description = opts.value("description").map(str::to_owned).or_else(|| doc_comment(item));
    let description = opt_str(description.as_deref());
    let call = match (arg_types(item)?.len(), is_template) {
        (0, false) => quote!(super::#ident()),
        (1, true) => quote!(super::#ident(vars)),
        (_, false) => {
            return Err(syn::Error::new_spanned(&item.sig.inputs, "a fixed resource takes no arguments"));
        }
        (_, true) => {
            return Err(syn::Error::new_spanned(
                &item.sig.inputs,
                "a resource template takes one argument: `&moat_sdk::UriVars`",
            ));
        }
    };
    let body = quote! {
        ::moat_sdk::ResourceDef {
            name: #name,
            uri: #uri,
            is_template: #is_template,
            title: #title,
            description: #description,
            mime_type: #mime,
            handler: |uri, vars| {
                let _ = (uri, vars);
                ::moat_sdk::__private::IntoResourceBody::into_body(#call)
            },
        }
    };
    Ok(emit(item, quote!(::moat_sdk::ResourceDef), body))
}

/// Makes a function a prompt.
///
/// The function takes one argument whose type implements `Deserialize + JsonSchema`
/// with string fields (they become the prompt's arguments, required unless
/// `Option`), or none, and returns `String` (one user message),
/// `Vec<PromptMessage>` or `PromptResult`, or a `Result` of one.
/// Options: `name`, `title`, `description` (else the doc comment).
#[proc_macro_attribute]
pub fn prompt(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, prompt_impl)
}

fn prompt_impl(opts: &Options, item: &ItemFn) -> syn::Result<TokenStream> {
    opts.check(&[], &["name", "title", "description"])?;
    let ident = &item.sig.ident;
    let name = opts.value("name").map(str::to_owned).unwrap_or_else(|| ident.to_string());
    let title = opt_str(opts.value("title"));
    let description = opts.value("description").map(str::to_owned).or_else(|| doc_comment(item));
    let description = opt_str(description.as_deref());
    let args = arg_types(item)?;
    let (arguments, call) = match args.as_slice() {
        [] => (quote!(::std::vec::Vec::new()), quote!(super::#ident())),
        [ty] => (
            quote!(::moat_sdk::__private::prompt_arguments::<#ty>()),
            quote!(super::#ident(::moat_sdk::__private::parse_prompt_args::<#ty>(arguments)?)),
        ),
        _ => {
            return Err(syn::Error::new_spanned(
                &item.sig.inputs,
                "a prompt takes one argument: a struct deriving Deserialize and JsonSchema",
            ));
        }
    };
    let body = quote! {
        ::moat_sdk::PromptDef {
            name: #name,
            title: #title,
            description: #description,
            arguments: || #arguments,
            handler: |arguments| {
                let _ = arguments;
                ::moat_sdk::__private::IntoPromptResult::into_prompt_result(#call)
            },
        }
    };
    Ok(emit(item, quote!(::moat_sdk::PromptDef), body))
}
