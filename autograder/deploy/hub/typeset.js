#!/usr/bin/env node
// Typeset the TeX of one HTML page with the kit's MathJax, so that the page shows its formulas
// with no network, no server and no script (used for the feedback students get back).
//
//   node typeset.js < page.html > typeset.html
//
// Every $...$, $$...$$, \(...\), \[...\] and \begin{env}...\end{env} outside <pre>, <code>,
// <script>, ... becomes an inline SVG (glyph shapes shared once per page): what MathJax draws in
// a browser. Loaders of MathJax the page had (nbconvert's CDN <script> and its configuration)
// are removed: the page needs none. The TeX comes from students, so nothing is loaded while
// typesetting (no \require, no autoload), the ui/safe filter drops javascript: links and
// non-MathJax classes and styles, and MathJax's own limits stop runaway macros. Exit status 1
// with a message on stderr if MathJax fails.
"use strict";

const fs = require("fs");
const path = require("path");

const MATHJAX = path.join(__dirname, "node_modules", "mathjax", "es5");

/** Whether a <script> element loads MathJax or configures it (nbconvert writes both). */
function isLoader(adaptor, node) {
  const src = adaptor.getAttribute(node, "src") || "";
  return /mathjax/i.test(src) || adaptor.getAttribute(node, "type") === "text/x-mathjax-config";
}

function typeset(page) {
  return require(path.join(MATHJAX, "node-main.js"))
    .init({
      loader: {
        paths: { mathjax: MATHJAX },
        load: ["adaptors/liteDOM", "input/tex-full", "output/svg", "ui/safe"],
        versionWarnings: false,
      },
      tex: {
        packages: { "[-]": ["require", "autoload"] },
        inlineMath: [["$", "$"], ["\\(", "\\)"]],
        displayMath: [["$$", "$$"], ["\\[", "\\]"]],
        processEscapes: true,
        processEnvironments: true,
        tags: "ams",
      },
      svg: { fontCache: "global" },
      startup: {
        document: page,
        ready() {
          // ui/safe hooks itself in only in a browser (it tests for `window`): do it here.
          MathJax.startup.extendHandler((handler) => MathJax._.ui.safe.SafeHandler.SafeHandler(handler));
          MathJax.startup.defaultReady();
        },
      },
    })
    .then((MathJax) => MathJax.startup.promise.then(() => MathJax));
}

function main() {
  typeset(fs.readFileSync(0, "utf8"))
    .then((MathJax) => {
      const adaptor = MathJax.startup.adaptor;
      const doc = MathJax.startup.document;
      const root = adaptor.root(doc.document);
      for (const node of adaptor.tags(root, "script")) {
        if (isLoader(adaptor, node)) adaptor.remove(node);
      }
      if (Array.from(doc.math).length === 0) adaptor.remove(doc.outputJax.svgStyles);
      process.stdout.write(adaptor.doctype(doc.document) + "\n" + adaptor.outerHTML(root) + "\n");
    })
    .catch((err) => {
      process.stderr.write(`MathJax could not typeset the page: ${err && err.message ? err.message : err}\n`);
      process.exit(1);
    });
}

main();
