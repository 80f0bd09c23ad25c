"use strict";
// Renders the OpenAPI document embedded in the page (no network needed),
// with a form per operation that sends the request with the browser's
// credentials (cookie or HTTP Basic) or a token pasted in the toolbar.
(function () {
  var spec = JSON.parse(document.getElementById("spec").textContent);
  var app = document.getElementById("app");
  var methods = ["get", "post", "put", "patch", "delete"];

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  function schemaText(s) {
    if (!s) return "";
    if (s.enum) return s.enum.map(function (v) { return JSON.stringify(v); }).join(" | ");
    if (s.oneOf) return s.oneOf.map(schemaText).join(" or ");
    return s.type || "object";
  }

  var header = el("header", {}, [
    el("h1", { text: spec.info.title }),
    el("p", { text: spec.info.description || "" })
  ]);
  var search = el("input", { type: "search", placeholder: "Filter operations", id: "search" });
  var token = el("input", { type: "password", placeholder: "Token (optional, sent as Bearer)", id: "token" });
  var toolbar = el("div", { "class": "toolbar" }, [
    search, token,
    el("a", { href: location.pathname.replace(/\/+$/, "") + "/swagger.json", text: "swagger.json" })
  ]);
  var main = el("main", {}, [toolbar]);
  app.appendChild(header);
  app.appendChild(main);

  // Group operations by their first tag, in document order.
  var groups = {}, order = [], count = 0;
  Object.keys(spec.paths).sort().forEach(function (path) {
    methods.forEach(function (m) {
      var op = spec.paths[path][m];
      if (!op) return;
      var tag = (op.tags && op.tags[0]) || "other";
      if (!groups[tag]) { groups[tag] = []; order.push(tag); }
      groups[tag].push({ path: path, method: m, op: op });
      count++;
    });
  });

  order.forEach(function (tag) {
    var section = el("section", { "class": "group" }, [el("h2", { "class": "tag", text: tag })]);
    groups[tag].forEach(function (o) { section.appendChild(operation(o)); });
    main.appendChild(section);
  });

  function operation(o) {
    var op = o.op;
    var summary = el("summary", {}, [
      el("span", { "class": "method m-" + o.method, text: o.method }),
      el("code", { "class": "path", text: o.path }),
      el("span", { "class": "summary", text: op.summary || "" })
    ]);
    var body = el("div", { "class": "body" });
    var inputs = [];
    var params = op.parameters || [];
    if (params.length) {
      var rows = params.map(function (p) {
        var input = el("input", { name: p.name, placeholder: p.in === "path" ? "required" : "" });
        inputs.push({ p: p, input: input });
        return el("tr", {}, [
          el("td", {}, [el("code", { text: p.name })]),
          el("td", { text: p.in + (p.required ? ", required" : "") }),
          el("td", { text: schemaText(p.schema) }),
          el("td", { text: p.description || "" }),
          el("td", {}, [input])
        ]);
      });
      body.appendChild(el("h4", { text: "Parameters" }));
      body.appendChild(el("table", {}, [
        el("thead", {}, [el("tr", {}, ["Name", "In", "Type", "Description", "Value"].map(function (h) { return el("th", { text: h }); }))]),
        el("tbody", {}, rows)
      ]));
    }
    var bodyInput = null;
    if (op.requestBody) {
      var media = op.requestBody.content["application/json"] || {};
      body.appendChild(el("h4", { text: "Request body (application/json)" }));
      body.appendChild(el("pre", { text: JSON.stringify(media.schema, null, 2) }));
      bodyInput = el("textarea", { "aria-label": "request body" });
      bodyInput.value = "{}";
      body.appendChild(bodyInput);
    }
    body.appendChild(el("h4", { text: "Responses" }));
    body.appendChild(el("table", {}, [el("tbody", {}, Object.keys(op.responses).map(function (code) {
      var r = op.responses[code];
      return el("tr", {}, [
        el("td", {}, [el("code", { text: code })]),
        el("td", { text: r.description || "" }),
        el("td", { text: Object.keys(r.content || {}).join(", ") })
      ]);
    }))]));
    var status = el("div", { "class": "status hidden" });
    var out = el("pre", { "class": "hidden" });
    var run = el("button", { type: "button", text: "Send request" });
    run.addEventListener("click", function () { send(o, inputs, bodyInput, status, out); });
    body.appendChild(run);
    body.appendChild(status);
    body.appendChild(out);
    var d = el("details", { "class": "op", "data-path": o.path, "data-method": o.method }, [summary, body]);
    return d;
  }

  function send(o, inputs, bodyInput, status, out) {
    var url = o.path, query = [];
    inputs.forEach(function (i) {
      var v = i.input.value;
      if (i.p.in === "path") url = url.replace("{" + i.p.name + "}", encodeURIComponent(v));
      else if (v !== "") query.push(encodeURIComponent(i.p.name) + "=" + encodeURIComponent(v));
    });
    if (query.length) url += "?" + query.join("&");
    var init = { method: o.method.toUpperCase(), credentials: "same-origin", headers: {} };
    if (token.value) init.headers["Authorization"] = "Bearer " + token.value;
    if (bodyInput) { init.body = bodyInput.value; init.headers["Content-Type"] = "application/json"; }
    status.classList.remove("hidden");
    status.textContent = init.method + " " + url + " …";
    fetch(url, init).then(function (res) {
      return res.text().then(function (text) {
        status.textContent = init.method + " " + url + " → " + res.status + " " + res.statusText;
        out.classList.remove("hidden");
        out.textContent = text.length > 200000 ? text.slice(0, 200000) + "\n… (truncated)" : text;
      });
    }).catch(function (err) {
      status.textContent = init.method + " " + url + " failed: " + err;
    });
  }

  search.addEventListener("input", function () {
    var q = search.value.toLowerCase();
    document.querySelectorAll("details.op").forEach(function (d) {
      var text = (d.getAttribute("data-method") + " " + d.getAttribute("data-path") + " " + d.textContent).toLowerCase();
      d.classList.toggle("hidden", q !== "" && text.indexOf(q) < 0);
    });
  });

  document.body.setAttribute("data-operations", String(count));
})();
