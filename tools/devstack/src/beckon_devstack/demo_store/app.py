"""The demo store: a catalogue, a cart kept in localStorage, checkout and order confirmation.

Every page inlines the Beckon loader (a verbatim copy of the tracker's `loader.js`, as a real
store would paste it) and tells the snippet what the visitor sees: the page type on every
page, the product on product pages, the cart when it changes, checkout and the order.
"""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse, JSONResponse, Response

CURRENCY = "EUR"
MAX_KEPT_ORDERS = 1000


@dataclass(frozen=True, slots=True)
class Category:
    category_id: str
    name: str
    blurb: str


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    category_id: str
    price: Decimal
    description: str
    hue: int  # the colour of its placeholder picture

    @property
    def price_cents(self) -> int:
        return int(self.price * 100)


CATEGORIES = (
    Category("shoes", "Shoes", "Light trail runners, city sneakers and boots for the long way up."),
    Category("apparel", "Apparel", "Layers that keep the rain out and breathe on the climb."),
)
PRODUCTS = (
    Product(
        "trail-runner-x",
        "Trail Runner X",
        "shoes",
        Decimal("129.90"),
        "A grippy, cushioned trail shoe that drains fast after river crossings.",
        152,
    ),
    Product(
        "city-sneaker",
        "City Sneaker",
        "shoes",
        Decimal("89.00"),
        "Clean leather sneaker with a recycled rubber sole, made for long city days.",
        211,
    ),
    Product(
        "summit-boot",
        "Summit Hiking Boot",
        "shoes",
        Decimal("189.00"),
        "Waterproof mid boot with a stiff sole for scree and snow.",
        28,
    ),
    Product(
        "rain-shell",
        "Rain Shell Jacket",
        "apparel",
        Decimal("179.00"),
        "Three-layer shell, 20k waterproofing, pit zips and a helmet-ready hood.",
        192,
    ),
    Product(
        "merino-tee",
        "Merino Tee",
        "apparel",
        Decimal("49.50"),
        "Soft 150 g merino that stays fresh for days on the trail.",
        330,
    ),
    Product(
        "trail-socks",
        "Trail Socks (3 pack)",
        "apparel",
        Decimal("14.90"),
        "Cushioned, seamless socks in a wool blend.",
        95,
    ),
)
CATEGORIES_BY_ID = {category.category_id: category for category in CATEGORIES}
PRODUCTS_BY_ID = {product.product_id: product for product in PRODUCTS}


class OrderLine(BaseModel):
    product_id: str = Field(max_length=64)
    quantity: int = Field(ge=1, le=99)


class PlaceOrder(BaseModel):
    items: list[OrderLine] = Field(min_length=1, max_length=50)
    email: str | None = Field(default=None, max_length=254)


def _read_static(name: str) -> str:
    return (resources.files("beckon_devstack.demo_store") / "static" / name).read_text("utf-8")


def _js(value: Any) -> str:
    """A JSON literal safe to place inside an inline <script>."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")


def _euros(amount: Decimal) -> str:
    return f"€{amount:,.2f}"


def _line(product: Product, quantity: int) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "name": product.name,
        "category": product.category_id,
        "price": float(product.price),
        "quantity": quantity,
    }


class Pages:
    """Renders the store's HTML; knows where the tracker is and how to call the snippet."""

    def __init__(
        self,
        tracker_url: str,
        site_key: str,
        allow_automation: bool,
        chat_url: str | None = None,
    ) -> None:
        self.loader = _read_static("loader.js").strip()
        self.init_options: dict[str, Any] = {
            "siteKey": site_key,
            "endpoint": tracker_url.rstrip("/"),
            "currency": CURRENCY,
        }
        if allow_automation:
            self.init_options["allowAutomation"] = True
        if chat_url:
            self.init_options["chatUrl"] = chat_url.rstrip("/")
        self.catalog = {
            product.product_id: {
                "name": product.name,
                "category": product.category_id,
                "price_cents": product.price_cents,
            }
            for product in PRODUCTS
        }

    def layout(self, title: str, page_type: str, body: str, calls: str = "") -> str:
        options = _js({**self.init_options, "pageType": page_type})
        nav = "".join(
            f'<a href="/c/{c.category_id}" data-testid="nav-{c.category_id}">{escape(c.name)}</a>'
            for c in CATEGORIES
        )
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · Ridgeline Outfitters</title>
<link rel="stylesheet" href="/static/store.css">
<script>
{self.loader}
beckon('init', {options});
{calls}
</script>
<script>window.DEMO_CATALOG = {_js(self.catalog)};</script>
<script src="/static/store.js" defer></script>
</head>
<body data-page="{page_type}">
<header class="top">
  <a class="brand" href="/" data-testid="home-link">Ridgeline<span>Outfitters</span></a>
  <nav>{nav}</nav>
  <a class="cart-link" href="/cart" data-testid="cart-link">Cart
    <span class="badge" id="cart-count" data-testid="cart-count">0</span></a>
</header>
<main>
{body}
</main>
<footer>Demo store for Beckon · prices in EUR incl. VAT · nothing here is for sale</footer>
</body>
</html>"""

    def card(self, product: Product) -> str:
        return f"""<a class="card" href="/p/{product.product_id}"
   data-testid="product-link-{product.product_id}" id="product-link-{product.product_id}">
  {self.picture(product)}
  <span class="card-name">{escape(product.name)}</span>
  <span class="price">{_euros(product.price)}</span>
</a>"""

    @staticmethod
    def picture(product: Product, large: bool = False) -> str:
        initials = "".join(word[0] for word in product.name.split()[:2])
        size = " large" if large else ""
        return (
            f'<span class="pic{size}" style="--hue:{product.hue}" aria-hidden="true">'
            f"{escape(initials)}</span>"
        )

    def home(self) -> str:
        categories = "".join(
            f"""<a class="category" href="/c/{c.category_id}" data-testid="category-{c.category_id}"
   id="category-{c.category_id}"><strong>{escape(c.name)}</strong><span>{escape(c.blurb)}</span></a>"""
            for c in CATEGORIES
        )
        featured = "".join(self.card(p) for p in PRODUCTS[:4])
        body = f"""<section class="hero">
  <h1>Gear for the long way up</h1>
  <p>Trail shoes, boots and shells, tested on real mountains. Free shipping from €100.</p>
</section>
<h2>Shop by category</h2>
<div class="categories">{categories}</div>
<h2>Featured</h2>
<div class="grid">{featured}</div>"""
        return self.layout("Home", "home", body)

    def category(self, category: Category) -> str:
        cards = "".join(self.card(p) for p in PRODUCTS if p.category_id == category.category_id)
        body = f"""<nav class="crumbs"><a href="/">Home</a> / {escape(category.name)}</nav>
<h1>{escape(category.name)}</h1>
<p class="lead">{escape(category.blurb)}</p>
<div class="grid">{cards}</div>"""
        return self.layout(category.name, "category", body)

    def product(self, product: Product) -> str:
        category = CATEGORIES_BY_ID[product.category_id]
        viewed = {
            "product_id": product.product_id,
            "name": product.name,
            "category": product.category_id,
            "price": float(product.price),
            "currency": CURRENCY,
        }
        body = f"""<nav class="crumbs"><a href="/">Home</a> /
  <a href="/c/{category.category_id}">{escape(category.name)}</a> / {escape(product.name)}</nav>
<article class="product" data-product-id="{product.product_id}">
  {self.picture(product, large=True)}
  <div class="details">
    <h1 data-testid="product-name">{escape(product.name)}</h1>
    <p class="price big" data-testid="product-price">{_euros(product.price)}</p>
    <p>{escape(product.description)}</p>
    <button class="primary" id="add-to-cart" data-testid="add-to-cart"
            data-product-id="{product.product_id}">Add to cart</button>
    <p class="notice" id="added" data-testid="added-notice" hidden>Added to your cart.
      <a href="/cart" data-testid="go-to-cart">View cart</a></p>
  </div>
</article>"""
        return self.layout(product.name, "product", body, f"beckon('product', {_js(viewed)});")

    def cart(self) -> str:
        body = """<h1>Your cart</h1>
<div id="cart" data-testid="cart"></div>
<p class="empty" id="cart-empty" data-testid="cart-empty" hidden>Your cart is empty.
  <a href="/">Keep shopping</a></p>
<div class="summary" id="cart-summary" hidden>
  <p>Total <strong id="cart-total" data-testid="cart-total"></strong></p>
  <a class="button primary" href="/checkout" id="checkout" data-testid="checkout">Checkout</a>
</div>"""
        return self.layout("Cart", "cart", body)

    def checkout(self) -> str:
        body = """<h1>Checkout</h1>
<div class="checkout">
  <form id="checkout-form" data-testid="checkout-form">
    <label>Name <input name="name" value="Alex Example" required></label>
    <label>E-mail <input name="email" type="email" value="alex@example.com" required></label>
    <label>Address <input name="address" value="1 Trail Road, 8000 Alpstadt" required></label>
    <button class="primary" type="submit" id="place-order" data-testid="place-order">
      Place order</button>
    <p class="error" id="order-error" data-testid="order-error" hidden></p>
  </form>
  <aside class="summary">
    <h2>Order summary</h2>
    <div id="checkout-lines" data-testid="checkout-lines"></div>
    <p>Total <strong id="checkout-total" data-testid="checkout-total"></strong></p>
  </aside>
</div>"""
        return self.layout("Checkout", "checkout", body)

    def confirmation(self, order: dict[str, Any]) -> str:
        rows = "".join(
            f"<tr><td>{escape(line['name'])}</td><td>{line['quantity']}</td>"
            f"<td>{_euros(Decimal(str(line['price'])) * line['quantity'])}</td></tr>"
            for line in order["items"]
        )
        completed = {key: order[key] for key in ("order_id", "value", "currency", "items")}
        # A reload of the confirmation page must not count the order twice.
        call = (
            f"(function(o){{var k='demo_order_tracked_'+o.order_id;"
            f"try{{if(localStorage.getItem(k))return;localStorage.setItem(k,'1')}}catch(e){{}}"
            f"beckon('order',o)}})({_js(completed)});"
        )
        body = f"""<section class="hero done">
  <h1>Thank you for your order!</h1>
  <p>Order <strong id="order-id" data-testid="order-id">{escape(order["order_id"])}</strong>
     is on its way. A confirmation goes to {escape(order.get("email") or "your inbox")}.</p>
</section>
<table class="lines"><thead><tr><th>Item</th><th>Qty</th><th>Amount</th></tr></thead>
<tbody>{rows}</tbody></table>
<p class="total">Total
  <strong data-testid="order-total">{_euros(Decimal(str(order["value"])))}</strong></p>
<p><a class="button" href="/" data-testid="continue-shopping">Continue shopping</a></p>"""
        return self.layout("Order confirmed", "confirmation", body, call)


def create_app(
    tracker_url: str,
    site_key: str,
    allow_automation: bool = False,
    chat_url: str | None = None,
) -> FastAPI:
    """The demo store app; `allow_automation` lets Playwright-driven browsers be tracked, and
    `chat_url` (the chat service's base URL) makes the snippet load the chat widget."""
    pages = Pages(tracker_url, site_key, allow_automation, chat_url)
    orders: OrderedDict[str, dict[str, Any]] = OrderedDict()
    static = {
        "store.css": (_read_static("store.css"), "text/css"),
        "store.js": (_read_static("store.js"), "application/javascript"),
    }
    app = FastAPI(title="Beckon demo store", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/", response_class=HTMLResponse)
    async def home() -> HTMLResponse:
        return HTMLResponse(pages.home())

    @app.get("/c/{category_id}", response_class=HTMLResponse)
    async def category(category_id: str) -> HTMLResponse:
        found = CATEGORIES_BY_ID.get(category_id)
        if found is None:
            raise HTTPException(404, "no such category")
        return HTMLResponse(pages.category(found))

    @app.get("/p/{product_id}", response_class=HTMLResponse)
    async def product(product_id: str) -> HTMLResponse:
        found = PRODUCTS_BY_ID.get(product_id)
        if found is None:
            raise HTTPException(404, "no such product")
        return HTMLResponse(pages.product(found))

    @app.get("/cart", response_class=HTMLResponse)
    async def cart() -> HTMLResponse:
        return HTMLResponse(pages.cart())

    @app.get("/checkout", response_class=HTMLResponse)
    async def checkout() -> HTMLResponse:
        return HTMLResponse(pages.checkout())

    @app.post("/api/orders", status_code=201)
    async def place_order(request: PlaceOrder) -> JSONResponse:
        lines = []
        for line in request.items:
            found = PRODUCTS_BY_ID.get(line.product_id)
            if found is None:
                raise HTTPException(422, f"unknown product {line.product_id}")
            lines.append((found, line.quantity))
        value = sum((p.price * quantity for p, quantity in lines), Decimal(0))
        order_id = f"BK-{secrets.token_hex(4).upper()}"
        order: dict[str, Any] = {
            "order_id": order_id,
            "value": float(value),
            "currency": CURRENCY,
            "items": [_line(p, quantity) for p, quantity in lines],
            "email": request.email,
        }
        orders[order_id] = order
        while len(orders) > MAX_KEPT_ORDERS:
            orders.popitem(last=False)
        return JSONResponse(order, status_code=201)

    @app.get("/order/{order_id}", response_class=HTMLResponse)
    async def confirmation(order_id: str) -> HTMLResponse:
        order = orders.get(order_id)
        if order is None:
            raise HTTPException(404, "no such order")
        return HTMLResponse(pages.confirmation(order))

    @app.get("/static/{name}")
    async def static_file(name: str) -> Response:
        if name not in static:
            raise HTTPException(404, "not found")
        text, media_type = static[name]
        return Response(text, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return app
