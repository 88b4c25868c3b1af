from tracker.main import main

main()
