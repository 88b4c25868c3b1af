"""Examples from Segment's published spec (Track, Page, Identify, HTTP API batch), verbatim."""

SAFARI_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/46.0.2490.86 Safari/537.36"
)

TRACK = {
    "anonymousId": "23adfd82-aa0f-45a7-a756-24f2a7a4c895",
    "context": {
        "library": {"name": "analytics.js", "version": "2.11.1"},
        "page": {
            "path": "/academy/",
            "referrer": "",
            "search": "",
            "title": "Analytics Academy",
            "url": "https://segment.com/academy/",
        },
        "userAgent": SAFARI_UA,
        "ip": "108.0.78.21",
    },
    "event": "Course Clicked",
    "integrations": {},
    "messageId": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
    "properties": {"title": "Intro to Analytics"},
    "receivedAt": "2015-12-12T19:11:01.266Z",
    "sentAt": "2015-12-12T19:11:01.169Z",
    "timestamp": "2015-12-12T19:11:01.249Z",
    "type": "track",
    "userId": "AiUGstSDIg",
    "originalTimestamp": "2015-12-12T19:11:01.152Z",
}

PAGE = {
    "anonymousId": "507f191e810c19729de860ea",
    "channel": "browser",
    "context": {
        "ip": "8.8.8.8",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:46.0) "
        "Gecko/20100101 Firefox/46.0",
    },
    "integrations": {"All": True, "Mixpanel": False, "Salesforce": False},
    "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
    "name": "Home",
    "properties": {
        "title": "Welcome | Initech",
        "url": "http://www.example.com",
    },
    "receivedAt": "2015-02-23T22:28:55.387Z",
    "sentAt": "2015-02-23T22:28:55.111Z",
    "timestamp": "2015-02-23T22:28:55.111Z",
    "type": "page",
    "userId": "97980cfea0067",
    "version": "1.1",
}

IDENTIFY = {
    "anonymousId": "507f191e810c19729de860ea",
    "channel": "browser",
    "context": {
        "ip": "8.8.8.8",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_5) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/40.0.2214.115 Safari/537.36",
    },
    "integrations": {"All": False, "Mixpanel": True, "Salesforce": True},
    "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
    "receivedAt": "2015-02-23T22:28:55.387Z",
    "sentAt": "2015-02-23T22:28:55.111Z",
    "timestamp": "2015-02-23T22:28:55.111Z",
    "traits": {
        "name": "Peter Gibbons",
        "email": "peter@example.com",
        "plan": "premium",
        "logins": 5,
        "address": {
            "street": "6th St",
            "city": "San Francisco",
            "state": "CA",
            "postalCode": "94103",
            "country": "USA",
        },
    },
    "type": "identify",
    "userId": "97980cfea0067",
    "version": "1.1",
}

# HTTP Tracking API, /v1/batch
BATCH = {
    "batch": [
        {
            "type": "identify",
            "userId": "019mr8mf4r",
            "traits": {"email": "jake@yahoo.com", "name": "Jake Peterson", "age": 26},
            "timestamp": "2012-12-02T00:30:12.984Z",
        },
        {
            "type": "track",
            "userId": "019mr8mf4r",
            "event": "Song Played",
            "properties": {"name": "Fallin for You", "artist": "Dan Gibson"},
            "timestamp": "2012-12-02T00:30:12.984Z",
        },
        {
            "type": "track",
            "userId": "971mj8mk7p",
            "event": "Song Played",
            "properties": {"name": "Wind in the Willows", "artist": "Michael Dilluvia"},
            "timestamp": "2012-12-02T00:30:12.984Z",
        },
    ],
    "context": {"device": {"type": "phone", "name": "Apple iPhone 6"}},
}

# E-commerce spec v2: Order Completed
ORDER_COMPLETED = {
    "type": "track",
    "userId": "019mr8mf4r",
    "event": "Order Completed",
    "properties": {
        "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
        "order_id": "50314b8e9bcf000000000000",
        "affiliation": "Google Store",
        "total": 27.50,
        "subtotal": 22.50,
        "revenue": 25.00,
        "shipping": 3,
        "tax": 2,
        "discount": 2.5,
        "coupon": "hasbros",
        "currency": "USD",
        "products": [
            {
                "product_id": "507f1f77bcf86cd799439011",
                "sku": "45790-32",
                "name": "Monopoly: 3rd Edition",
                "price": 19,
                "quantity": 1,
                "category": "Games",
                "url": "https://www.example.com/product/path",
                "image_url": "https:///www.example.com/product/path.jpg",
            },
            {
                "product_id": "505bd76785ebb509fc183733",
                "sku": "46493-32",
                "name": "Uno Card Game",
                "price": 3,
                "quantity": 2,
                "category": "Games",
            },
        ],
    },
}
