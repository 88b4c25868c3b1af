from triggers.main import main

main()
