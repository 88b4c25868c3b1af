// The demo store's own script: a cart in localStorage, and the snippet calls that go with it.
(function () {
  'use strict';
  const CART_KEY = 'demo_cart';
  const catalog = window.DEMO_CATALOG || {};
  const euros = (cents) => '€' + (cents / 100).toFixed(2);

  function readCart() {
    try {
      const items = JSON.parse(localStorage.getItem(CART_KEY) || '[]');
      return items.filter((i) => catalog[i.product_id] && i.quantity > 0);
    } catch (e) {
      return [];
    }
  }

  function lines(cart) {
    return cart.map((i) => {
      const p = catalog[i.product_id];
      return { product_id: i.product_id, name: p.name, category: p.category, price: p.price_cents / 100, quantity: i.quantity };
    });
  }

  function totalCents(cart) {
    return cart.reduce((sum, i) => sum + catalog[i.product_id].price_cents * i.quantity, 0);
  }

  function showCount(cart) {
    const badge = document.getElementById('cart-count');
    if (badge) badge.textContent = String(cart.reduce((n, i) => n + i.quantity, 0));
  }

  // Every change the visitor makes is reported with the whole cart, as the snippet expects.
  function saveCart(cart, track) {
    localStorage.setItem(CART_KEY, JSON.stringify(cart));
    showCount(cart);
    if (track) {
      beckon('cart', { items: lines(cart), value: totalCents(cart) / 100, currency: 'EUR' });
    }
  }

  function changeQuantity(productId, delta) {
    const cart = readCart();
    const line = cart.find((i) => i.product_id === productId);
    if (line) line.quantity += delta;
    else if (delta > 0) cart.push({ product_id: productId, quantity: delta });
    saveCart(cart.filter((i) => i.quantity > 0), true);
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach((k) => node.setAttribute(k, attrs[k]));
    if (text != null) node.textContent = text;
    return node;
  }

  function renderCart() {
    const cart = readCart();
    const box = document.getElementById('cart');
    box.textContent = '';
    cart.forEach((i) => {
      const p = catalog[i.product_id];
      const row = el('div', { class: 'cart-row', 'data-testid': 'cart-item-' + i.product_id });
      row.append(el('a', { href: '/p/' + i.product_id }, p.name));
      const qty = el('span', { class: 'qty' });
      const minus = el('button', { 'data-testid': 'decrease-' + i.product_id, 'aria-label': 'One less' }, '−');
      const plus = el('button', { 'data-testid': 'increase-' + i.product_id, 'aria-label': 'One more' }, '+');
      minus.onclick = () => { changeQuantity(i.product_id, -1); renderCart(); };
      plus.onclick = () => { changeQuantity(i.product_id, 1); renderCart(); };
      qty.append(minus, el('span', { 'data-testid': 'quantity-' + i.product_id }, String(i.quantity)), plus);
      row.append(qty, el('span', { class: 'price' }, euros(p.price_cents * i.quantity)));
      const remove = el('button', { class: 'link', 'data-testid': 'remove-' + i.product_id }, 'Remove');
      remove.onclick = () => { changeQuantity(i.product_id, -i.quantity); renderCart(); };
      row.append(remove);
      box.append(row);
    });
    document.getElementById('cart-empty').hidden = cart.length > 0;
    document.getElementById('cart-summary').hidden = cart.length === 0;
    document.getElementById('cart-total').textContent = euros(totalCents(cart));
  }

  function setUpCheckout() {
    const cart = readCart();
    const list = document.getElementById('checkout-lines');
    lines(cart).forEach((l) => list.append(el('p', {}, l.quantity + ' × ' + l.name + ' — ' + euros(l.price * 100 * l.quantity))));
    document.getElementById('checkout-total').textContent = euros(totalCents(cart));
    const button = document.getElementById('place-order');
    const error = document.getElementById('order-error');
    if (!cart.length) {
      button.disabled = true;
      error.textContent = 'Your cart is empty.';
      error.hidden = false;
      return;
    }
    beckon('checkout', { items: lines(cart), value: totalCents(cart) / 100, currency: 'EUR' });
    document.getElementById('checkout-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      button.disabled = true;
      const form = new FormData(event.target);
      const response = await fetch('/api/orders', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ items: cart, email: form.get('email') }),
      });
      if (!response.ok) {
        error.textContent = 'The order could not be placed (' + response.status + '). Please try again.';
        error.hidden = false;
        button.disabled = false;
        return;
      }
      const order = await response.json();
      saveCart([], false); // the order emptied the cart; that is not a visitor's cart change
      location.assign('/order/' + encodeURIComponent(order.order_id));
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    showCount(readCart());
    const page = document.body.dataset.page;
    const add = document.getElementById('add-to-cart');
    if (add) {
      add.addEventListener('click', () => {
        changeQuantity(add.dataset.productId, 1);
        document.getElementById('added').hidden = false;
      });
    }
    if (page === 'cart') renderCart();
    if (page === 'checkout') setUpCheckout();
  });
})();
